"""Speed and quality of the parallel-beam projectors and SIRT, next to astra-toolbox and scikit-image.

Run from the repository root::

    python benchmarks/bench_projectors.py                 # CPU cases  -> benchmarks/results/projectors_cpu.json
    python benchmarks/bench_projectors.py --device cuda   # GPU cases  -> benchmarks/results/projectors_gpu.json

CPU cases: 2D 256^2 x 180 views forward/adjoint (tomotime, astra ``linear``,
scikit-image); 2D SIRT, 100 iterations (tomotime vs astra ``SIRT``, plus one
scikit-image SART iteration); 3D 128^3 x 100 views (and 256^3 if it fits the
time budget) forward/adjoint/SIRT with tomotime only, since astra's 3D
algorithms need a GPU. GPU cases: 2D SIRT vs astra ``SIRT_CUDA`` and 3D
256^3 / 512^3 vs astra ``FP3D_CUDA``/``BP3D_CUDA``/``SIRT3D_CUDA``.

Times are wall-clock seconds after one warm-up run; the tools are called in
turn within each repeat so that a change in machine load hits them alike, and
the ratios (tomotime / astra) come from the same run. ``cpu_s`` is the process
CPU time, which shows how many cores a tool kept busy. Each tool reconstructs
from data made by its own projector (the 2D sinograms of tomotime and astra's
``linear`` projector agree to float precision; the run reports the difference).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import skimage
import torch
from environment import environment as shared_environment
from skimage.data import shepp_logan_phantom
from skimage.transform import iradon, iradon_sart, radon, resize

from tomotime.io.atomic import atomic_path
from tomotime.metrics import rmse_percent
from tomotime.physics import ParallelProjector2D, VolumeProjector
from tomotime.sim.phantoms import shepp_logan_3d
from tomotime.solvers import sirt

try:
    import astra
except ImportError:  # the comparison rows are then marked "not run"
    astra = None

RESULTS = Path(__file__).resolve().parent / "results"
ANGLES_2D = np.linspace(-90.0, 90.0, 180, endpoint=False)


class Bench:
    """Collects measurements and ratios; ``sync`` waits for the device before a clock is read."""

    def __init__(self, device: torch.device, repeats: int) -> None:
        self.device, self.repeats = device, repeats
        self.rows: list[dict] = []
        self.ratios: list[dict] = []

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def clock(self, fn) -> tuple[float, float, object]:
        self.sync()
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        self.sync()
        return time.perf_counter() - wall, time.process_time() - cpu, out

    def compare(self, case: str, op: str, fns: dict, *, extra: dict | None = None) -> dict:
        """Time each of ``fns`` (name -> callable) ``repeats`` times, in turn, after one warm-up each."""
        for fn in fns.values():
            fn()
        times = {name: ([], []) for name in fns}
        for _ in range(self.repeats):
            for name, fn in fns.items():
                wall, cpu, _ = self.clock(fn)
                times[name][0].append(wall)
                times[name][1].append(cpu)
        for name, (wall, cpu) in times.items():
            self.add(case, name, op, wall, cpu, **(extra or {}).get(name, {}))
        return {name: float(np.mean(wall)) for name, (wall, _) in times.items()}

    def add(self, case: str, tool: str, op: str, wall, cpu=None, **extra) -> None:
        wall = np.atleast_1d(np.asarray(wall, dtype=float))
        row = {"case": case, "tool": tool, "op": op, "mean_s": float(wall.mean()), "min_s": float(wall.min()),
               "std_s": float(wall.std()), "repeats": int(wall.size)}
        if cpu is not None:
            row["cpu_s"] = float(np.mean(cpu))
        row.update(extra)
        self.rows.append(row)

    def not_run(self, case: str, tool: str, op: str, why: str) -> None:
        self.rows.append({"case": case, "tool": tool, "op": op, "status": f"not run: {why}"})

    def ratio(self, case: str, op: str, ours: str, theirs: str) -> None:
        mine, other = self._row(case, ours, op), self._row(case, theirs, op)
        if mine and other and "mean_s" in mine and "mean_s" in other:
            self.ratios.append({"case": case, "op": op, "numerator": ours, "denominator": theirs,
                                "ratio_mean": mine["mean_s"] / other["mean_s"],
                                "ratio_min": mine["min_s"] / other["min_s"]})

    def _row(self, case: str, tool: str, op: str) -> dict | None:
        return next((r for r in self.rows if (r["case"], r["tool"], r["op"]) == (case, tool, op)), None)


def single_thread(fn):
    """``fn`` run with one intra-op thread, as astra's CPU algorithms use (a per-core comparison)."""
    def run(*args):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return fn(*args)
        finally:
            torch.set_num_threads(threads)
    return run


# ------------------------------------------------------------------ astra helpers (2D CPU/GPU, 3D GPU)


class AstraSession:
    """Creates astra objects and deletes them all on exit."""

    def __init__(self, dims: int) -> None:
        self.data = astra.data2d if dims == 2 else astra.data3d
        self.data_ids, self.algorithm_ids, self.projector_ids = [], [], []

    def __enter__(self) -> AstraSession:
        return self

    def __exit__(self, *exc) -> None:
        for alg in self.algorithm_ids:
            astra.algorithm.delete(alg)
        for data_id in self.data_ids:
            self.data.delete(data_id)
        for projector in self.projector_ids:
            astra.projector.delete(projector)

    def create(self, kind: str, geometry, value=0.0) -> int:
        data_id = self.data.create(kind, geometry, value)
        self.data_ids.append(data_id)
        return data_id

    def projector(self, kind: str, proj_geom, vol_geom) -> int:
        projector = astra.create_projector(kind, proj_geom, vol_geom)
        self.projector_ids.append(projector)
        return projector

    def algorithm(self, name: str, **cfg) -> int:
        config = astra.astra_dict(name)
        config.update(cfg)
        alg = astra.algorithm.create(config)
        self.algorithm_ids.append(alg)
        return alg


def astra_geometry_2d(n: int, angles_deg: np.ndarray):
    """astra's 2D geometry equal to ``ParallelProjector2D(angles_deg, (n, n))``: same angles, rows = Z."""
    return astra.create_vol_geom(n, n), astra.create_proj_geom("parallel", 1.0, n, np.radians(angles_deg))


def astra_sirt_2d(sino: np.ndarray, n: int, angles_deg: np.ndarray, iterations: int, *, gpu: bool):
    """astra SIRT (CPU ``linear`` projector, or ``SIRT_CUDA``) from zero; returns ``(rec, setup_s, run_s)``."""
    start = time.perf_counter()
    vol_geom, proj_geom = astra_geometry_2d(n, angles_deg)
    with AstraSession(2) as session:
        sino_id = session.create("-sino", proj_geom, sino)
        rec_id = session.create("-vol", vol_geom, 0.0)
        cfg = {"ProjectionDataId": sino_id, "ReconstructionDataId": rec_id}
        if not gpu:
            cfg["ProjectorId"] = session.projector("linear", proj_geom, vol_geom)
        alg = session.algorithm("SIRT_CUDA" if gpu else "SIRT", **cfg)
        ready = time.perf_counter()
        astra.algorithm.run(alg, iterations)
        rec = session.data.get(rec_id)
    done = time.perf_counter()
    return rec, ready - start, done - ready


# ------------------------------------------------------------------ 2D cases


def phantom_2d(n: int) -> np.ndarray:
    return resize(shepp_logan_phantom(), (n, n), anti_aliasing=True).astype(np.float32)


def bench_2d_projectors(bench: Bench, n: int = 256) -> None:
    case = f"2D {n}^2 x {ANGLES_2D.size} views"
    f = phantom_2d(n)
    builds = [bench.clock(lambda: ParallelProjector2D(ANGLES_2D, (n, n), device=bench.device))
              for _ in range(bench.repeats + 1)][1:]
    op = builds[-1][2]
    bench.add(case, "tomotime", "build (one-off)", [b[0] for b in builds], [b[1] for b in builds],
              nnz=int(op._matrix.values().numel()))
    x = torch.from_numpy(f).to(bench.device)
    y = op.forward(x)
    back = op.adjoint(y)
    sino_sk = radon(f, ANGLES_2D, circle=True)
    fwd = {"tomotime": lambda: op.forward(x), "scikit-image": lambda: radon(f, ANGLES_2D, circle=True)}
    adj = {"tomotime": lambda: op.adjoint(y),
           "scikit-image": lambda: iradon(sino_sk, ANGLES_2D, filter_name=None, circle=True)}
    if bench.device.type == "cpu":
        fwd["tomotime 1 thread"] = single_thread(lambda: op.forward(x))
        adj["tomotime 1 thread"] = single_thread(lambda: op.adjoint(y))
    if astra is None:
        bench.compare(case, "forward", fwd)
        bench.compare(case, "adjoint", adj)
        for op_name in ("forward", "adjoint"):
            bench.not_run(case, "astra", op_name, "astra-toolbox is not installed")
        return
    vol_geom, proj_geom = astra_geometry_2d(n, ANGLES_2D)
    with AstraSession(2) as session:
        projector = session.projector("linear", proj_geom, vol_geom)
        vol_id = session.create("-vol", vol_geom, f)
        sino_id = session.create("-sino", proj_geom, 0.0)
        back_id = session.create("-vol", vol_geom, 0.0)
        fp = session.algorithm("FP", ProjectorId=projector, VolumeDataId=vol_id, ProjectionDataId=sino_id)
        bp = session.algorithm("BP", ProjectorId=projector, ProjectionDataId=sino_id, ReconstructionDataId=back_id)
        astra.algorithm.run(fp)
        astra.algorithm.run(bp)  # back-projects astra's sinogram, equal to ours to float precision
        diffs = [_rel_max(session.data.get(sino_id), y), _rel_max(session.data.get(back_id), back)]
        fwd["astra"] = lambda: astra.algorithm.run(fp)
        adj["astra"] = lambda: astra.algorithm.run(bp)
        bench.compare(case, "forward", fwd, extra={"astra": {"max_rel_diff_vs_tomotime": diffs[0]}})
        bench.compare(case, "adjoint", adj, extra={"astra": {"max_rel_diff_vs_tomotime": diffs[1]}})
    for op_name in ("forward", "adjoint"):
        bench.ratio(case, op_name, "tomotime", "astra")
        bench.ratio(case, op_name, "tomotime 1 thread", "astra")


def _rel_max(theirs: np.ndarray, ours: torch.Tensor) -> float:
    ours = ours.cpu().numpy()
    return float(np.abs(theirs - ours).max() / np.abs(ours).max())


def bench_2d_sirt(bench: Bench, n: int = 256, iterations: int = 100) -> None:
    """SIRT from zero without constraints; each runner returns ``(x, setup_s, run_s, cpu_s)``."""
    case = f"2D SIRT {n}^2 x {ANGLES_2D.size} views, {iterations} it"
    gpu = bench.device.type == "cuda"
    f = phantom_2d(n)
    b = ParallelProjector2D(ANGLES_2D, (n, n), device=bench.device).forward(torch.from_numpy(f).to(bench.device))
    b_host = b.cpu().numpy()

    def ours(its: int):
        cpu = time.process_time()
        build, _, op = bench.clock(lambda: ParallelProjector2D(ANGLES_2D, (n, n), device=bench.device))
        run, _, x = bench.clock(lambda: sirt(op, b, iterations=its, progress=False))
        return x.cpu().numpy(), build, run, time.process_time() - cpu

    def theirs(its: int):
        cpu = time.process_time()
        rec, setup, run = astra_sirt_2d(b_host, n, ANGLES_2D, its, gpu=gpu)
        return rec, setup, run, time.process_time() - cpu

    astra_name = "astra SIRT_CUDA" if gpu else "astra"
    runners = {"tomotime": ours}
    if not gpu:
        runners["tomotime 1 thread"] = single_thread(ours)
    if astra is not None and (not gpu or astra.use_cuda()):
        runners[astra_name] = theirs
    else:
        bench.not_run(case, astra_name, "sirt incl. build", "astra-toolbox (with CUDA for the GPU case) is unavailable")
    for run in runners.values():
        run(2)  # warm-up
    results = {name: [] for name in runners}
    for _ in range(bench.repeats):
        for name, run in runners.items():
            results[name].append(run(iterations))
    reference = results["tomotime"][-1][0]
    for name, res in results.items():
        x = res[-1][0]
        quality = {"rmse": float(np.sqrt(np.mean((x - f) ** 2))), "rmse_percent": rmse_percent(x, f)}
        if name == astra_name:
            quality["max_rel_diff_vs_tomotime"] = float(np.abs(x - reference).max() / np.abs(x).max())
        bench.add(case, name, "sirt incl. build", [r[1] + r[2] for r in res], [r[3] for r in res], **quality)
        bench.add(case, name, "sirt iterations only", [r[2] for r in res],
                  per_iteration_s=float(np.mean([r[2] for r in res])) / iterations)
    for name in results:
        for op_name in ("sirt incl. build", "sirt iterations only"):
            if name != astra_name and astra_name in results:
                bench.ratio(case, op_name, name, astra_name)
    if not gpu:
        sino_sk = radon(f, ANGLES_2D, circle=True)  # scikit-image's own centring (n // 2)
        wall, cpu, sart = bench.clock(lambda: iradon_sart(sino_sk, theta=ANGLES_2D))
        bench.add(case, "scikit-image", "iradon_sart, 1 iteration", wall, cpu,
                  rmse=float(np.sqrt(np.mean((sart - f) ** 2))), rmse_percent=rmse_percent(sart, f))


# ------------------------------------------------------------------ 3D cases


def bench_3d(bench: Bench, n: int, n_views: int = 100, iterations: int = 10) -> None:
    case = f"3D {n}^3 x {n_views} views"
    angles = np.linspace(-90.0, 90.0, n_views, endpoint=False)
    truth = shepp_logan_3d(n)
    wall, cpu, op = bench.clock(lambda: VolumeProjector(angles, truth.shape, device=bench.device))
    bench.add(case, "tomotime", "build (one-off)", wall, cpu)
    x = torch.from_numpy(truth).to(bench.device)
    y = op.forward(x)
    bench.compare(case, "forward", {"tomotime": lambda: op.forward(x)})
    bench.compare(case, "adjoint", {"tomotime": lambda: op.adjoint(y)})
    stamps = []

    def stamp(it, _x):
        bench.sync()
        stamps.append(time.perf_counter())

    wall, cpu, rec = bench.clock(lambda: sirt(op, y, iterations=iterations, callback=stamp, progress=False))
    per_it = float(np.diff(stamps).mean()) if len(stamps) > 1 else wall / iterations
    bench.add(case, "tomotime", f"sirt {iterations} it", wall, cpu, per_iteration_s=per_it,
              rmse_percent=rmse_percent(rec.cpu().numpy(), truth))
    if bench.device.type != "cuda":
        for op_name in ("forward", "adjoint", f"sirt {iterations} it"):
            bench.not_run(case, "astra", op_name, "needs a GPU (astra's 3D algorithms are CUDA only)")
    elif astra is None or not astra.use_cuda():
        bench.not_run(case, "astra", f"sirt {iterations} it", "astra-toolbox with CUDA is not available")
    else:
        bench_astra_3d(bench, case, angles, truth, iterations)
        for op_name in ("forward", "adjoint", f"sirt {iterations} it"):
            bench.ratio(case, op_name, "tomotime", "astra CUDA")


def bench_astra_3d(bench: Bench, case: str, angles: np.ndarray, truth: np.ndarray, iterations: int) -> None:
    """astra FP3D/BP3D/SIRT3D_CUDA; astra's data live in host memory, so its times include transfers."""
    nz, ny, nx = truth.shape
    vol_geom = astra.create_vol_geom(nz, nx, ny)  # data (slices, rows, cols) = (Y, Z, X): slices along the tilt axis
    proj_geom = astra.create_proj_geom("parallel3d", 1.0, 1.0, ny, nx, np.radians(angles))  # data (Y, N, X)
    volume = np.ascontiguousarray(truth.transpose(1, 0, 2))
    note = {"note": "includes host<->GPU transfers"}
    with AstraSession(3) as session:
        vol_id = session.create("-vol", vol_geom, volume)
        proj_id = session.create("-proj3d", proj_geom, 0.0)
        rec_id = session.create("-vol", vol_geom, 0.0)
        fp = session.algorithm("FP3D_CUDA", VolumeDataId=vol_id, ProjectionDataId=proj_id)
        bp = session.algorithm("BP3D_CUDA", ProjectionDataId=proj_id, ReconstructionDataId=rec_id)
        bench.compare(case, "forward", {"astra CUDA": lambda: astra.algorithm.run(fp)}, extra={"astra CUDA": note})
        bench.compare(case, "adjoint", {"astra CUDA": lambda: astra.algorithm.run(bp)}, extra={"astra CUDA": note})
        astra.algorithm.run(fp)  # projections of the phantom by astra's own projector
        session.data.store(rec_id, 0.0)
        alg = session.algorithm("SIRT3D_CUDA", ProjectionDataId=proj_id, ReconstructionDataId=rec_id)
        wall, cpu, _ = bench.clock(lambda: astra.algorithm.run(alg, iterations))
        rec = session.data.get(rec_id)
    bench.add(case, "astra CUDA", f"sirt {iterations} it", wall, cpu, per_iteration_s=wall / iterations,
              rmse_percent=rmse_percent(rec, volume), **note)


def estimate_3d_seconds(bench: Bench, small: int, large: int, iterations: int) -> float | None:
    """Time of ``bench_3d`` at ``large`` extrapolated from the rows measured at ``small``."""
    rows = {r["op"]: r for r in bench.rows if r["case"].startswith(f"3D {small}^3") and r["tool"] == "tomotime"}
    try:
        build = rows["build (one-off)"]["mean_s"]
        apply = rows["forward"]["mean_s"] + rows["adjoint"]["mean_s"]
        solve = rows[f"sirt {iterations} it"]["mean_s"]
    except KeyError:
        return None
    scale = large / small
    return build * scale**2 + (apply * (bench.repeats + 1) + solve) * scale**3


# ------------------------------------------------------------------ report


def environment(device: torch.device) -> dict:
    return shared_environment(device, astra=getattr(astra, "__version__", None),
                              astra_cuda=bool(astra is not None and astra.use_cuda()),
                              **{"scikit-image": skimage.__version__})


def print_table(bench: Bench) -> None:
    print(f"\n{'case':<34} {'op':<26} {'tool':<16} {'mean s':>9} {'min s':>9} {'cpu s':>8}  extra")
    for r in bench.rows:
        if "status" in r:
            print(f"{r['case']:<34} {r['op']:<26} {r['tool']:<16} {r['status']}")
            continue
        extra = ", ".join(f"{k}={v:.3g}" for k, v in r.items() if k in ("rmse", "rmse_percent", "per_iteration_s",
                                                                        "max_rel_diff_vs_tomotime"))
        cpu = f"{r['cpu_s']:8.3f}" if "cpu_s" in r else " " * 8
        print(f"{r['case']:<34} {r['op']:<26} {r['tool']:<16} {r['mean_s']:9.4f} {r['min_s']:9.4f} {cpu}  {extra}")
    print(f"\n{'case':<34} {'op':<26} {'ratio':<30} {'mean':>7} {'min':>7}")
    for r in bench.ratios:
        label = f"{r['numerator']} / {r['denominator']}"
        print(f"{r['case']:<34} {r['op']:<26} {label:<30} {r['ratio_mean']:7.2f} {r['ratio_min']:7.2f}")


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats after one warm-up (default 3)")
    parser.add_argument("--budget-3d", type=float, default=60.0,
                        help="CPU only: run 256^3 when its estimated time is below this many seconds")
    parser.add_argument("--out", type=Path, help="JSON file (default results/projectors_{cpu,gpu}.json)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    out = args.out or RESULTS / f"projectors_{'gpu' if device.type == 'cuda' else 'cpu'}.json"
    bench = Bench(device, max(1, args.repeats))
    env = environment(device)
    print(json.dumps(env, indent=1))
    notes = []
    if device.type == "cpu":
        bench_2d_projectors(bench)
        bench_2d_sirt(bench)
        bench_3d(bench, 128)
        estimate = estimate_3d_seconds(bench, 128, 256, 10)
        if estimate is not None and estimate <= args.budget_3d:
            bench_3d(bench, 256)
        else:
            notes.append(f"3D 256^3 skipped: estimated {estimate or float('nan'):.0f} s on this machine, "
                         f"above the budget of {args.budget_3d:.0f} s (--budget-3d)")
    else:
        bench_2d_sirt(bench)
        for n in (256, 512):
            bench_3d(bench, n)
    env["load_average_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    print_table(bench)
    for note in notes:
        print(note)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out, overwrite=True) as tmp:
        tmp.write_text(json.dumps({"environment": env, "measurements": bench.rows, "ratios": bench.ratios,
                                   "notes": notes}, indent=1) + "\n")
    print(f"\nwrote {out}")
    return out


if __name__ == "__main__":
    main()
