"""Speed against the public reference implementation: time per epoch and quality after equal wall time.

Needs the optional ``quantem`` package (``pip install -e '.[bench-quantem]'``,
never a dependency of tomotime). Run from the repository root::

    python benchmarks/bench_inr_quantem.py            # -> results/inr_quantem_cpu.json

Problem: the sea-mine phantom at 32^3 recorded at 30 views over +-70 deg
(``inr_scenarios.make("speed", 32)``), one torch thread. quantem 0.1.10:
``Tomography`` with its default H-Siren (3 x 256), ``TomographyINRDataset``
(pose learning on), 1,024 rays a step, smooth-L1, data loader without worker
processes, ``--epochs`` epochs; its wall time per epoch is measured. tomotime:
``train_inr`` with the default feature-grid field and ``--align``, trained for
the same total wall time as quantem. SSIM of both volumes against the truth
(both definitions of ``bench_inr.py``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from bench_inr import ssim_pair
from environment import environment
from inr_scenarios import make

from tomotime.recon.inr import InrConfig, train_inr
from tomotime.recon.inr.method import InrMethod
from tomotime.training import train

RESULTS = Path(__file__).resolve().parent / "results"


def run_quantem(scenario, epochs: int) -> dict:
    from quantem.core.ml.inr import HSiren
    from quantem.tomography.dataset_models import TomographyINRDataset
    from quantem.tomography.object_models import ObjectINR
    from quantem.tomography.tomography import Tomography

    images, angles = scenario.series.images, scenario.series.angles
    shape = scenario.truth.shape
    dset = TomographyINRDataset.from_data(images.copy(), angles.copy())
    obj = ObjectINR.from_model(HSiren(final_activation="softplus"), shape=shape, device="cpu")
    tomo = Tomography.from_models(dset, obj, device="cpu", verbose=False, rng=0)
    times = []
    for _ in range(epochs):
        began = time.perf_counter()
        tomo.reconstruct(num_iter=1, batch_size=1024, num_workers=0, loss_type="smooth_l1",
                         optimizer_params={"object": {"type": "adam", "lr": 1e-4},
                                           "pose": {"type": "adam", "lr": 5e-2}} if not times else None,
                         use_bfloat16=False)
        times.append(time.perf_counter() - began)
    volume = _quantem_volume(obj, shape)
    return {"epoch_seconds": [round(t, 2) for t in times], "seconds": round(sum(times), 2),
            **ssim_pair(volume, scenario.truth)}


def _quantem_volume(obj, shape) -> np.ndarray:
    with torch.no_grad():
        v = obj.forward(None) if hasattr(obj, "forward") else obj.obj
    v = (v if isinstance(v, np.ndarray) else v.detach().cpu().numpy()).astype(np.float32).reshape(shape)
    return v


def run_ours(scenario, seconds: float) -> dict:
    cfg = InrConfig(device="cpu", align=True, epochs=1000, eval_every=10 ** 9, patience=None, holdout_fraction=0.0)
    method = InrMethod(scenario.series, cfg, torch.device("cpu"))
    built = {}
    build = method.build_model
    method.build_model = lambda: built.setdefault("model", build())
    began, steps = time.perf_counter(), [0]

    def stop(step, info):
        steps[0] = step
        if time.perf_counter() - began > seconds:
            raise KeyboardInterrupt

    try:
        train(method, progress=False, callback=stop)
    except KeyboardInterrupt:
        pass
    elapsed = time.perf_counter() - began
    epochs = steps[0] * cfg.batch_size / method.n_train
    return {"seconds": round(elapsed, 2), "steps": steps[0], "epochs": round(epochs, 2),
            "epoch_seconds": round(elapsed / epochs, 3),
            **ssim_pair(built["model"].eval().volume(), scenario.truth)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    scenario = make("speed", 32)
    theirs = run_quantem(scenario, args.epochs)
    print("quantem", theirs, flush=True)
    ours = run_ours(scenario, theirs["seconds"])
    print("tomotime", ours, flush=True)
    import quantem

    report = {"environment": environment(torch.device("cpu"), quantem=quantem.__version__),
              "problem": "sea mine 32^3, 30 views over +-70 deg, 1,024 rays a step, one thread",
              "quantem": theirs, "tomotime": ours,
              "epoch_time_ratio": round(float(np.mean(theirs["epoch_seconds"])) / ours["epoch_seconds"], 1)}
    (RESULTS / "inr_quantem_cpu.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report["epoch_time_ratio"]))


if __name__ == "__main__":
    main()
