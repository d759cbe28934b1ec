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
    volume, orientation = _quantem_volume(obj, scenario.truth)
    return {"epoch_seconds": [round(t, 2) for t in times], "seconds": round(sum(times), 2),
            **ssim_pair(volume, scenario.truth), "orientation": orientation}


def _quantem_volume(obj, truth: np.ndarray) -> tuple[np.ndarray, str]:
    """quantem's volume in the axis order and orientation (of the 48) that best matches the truth.

    Its axis and sign conventions differ from the project's and are not
    documented; searching them gives quantem the benefit of the doubt.
    """
    import itertools

    v = obj.create_volume(return_vol=True)
    v = (v if isinstance(v, np.ndarray) else v.detach().cpu().numpy()).astype(np.float32).reshape(truth.shape)
    best = (-np.inf, v, "")
    for order in itertools.permutations(range(3)):
        w = v.transpose(order)
        for flips in itertools.product((False, True), repeat=3):
            u = np.ascontiguousarray(np.flip(w, [a for a, f in enumerate(flips) if f]) if any(flips) else w)
            score = ssim_pair(u, truth)["ssim"]
            if score > best[0]:
                best = (score, u, f"transpose {order}, flip {flips}")
    return best[1], best[2]


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
