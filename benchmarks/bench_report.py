"""Size and writing time of the HTML run report of a 100-time-point 64^3 run (targets: < 20 MB, < 30 s).

The run is made as a user would: ``tomotime simulate nanorod-alloying --size 64
--steps 100 --dose 200``, then ``tomotime reconstruct series.mrc --method sirt
--window 30 --iterations 10 --min 0 --no-report``. The report is then written
``--repeats`` times with :func:`tomotime.viz.report.write_report` (every section:
input, result with the 100-frame slider, movie and isosurfaces, quality with the
reprojection error of every view and the metrics against the truth, found beside
the input). Results go to ``results/report_cpu.json``.

```bash
python benchmarks/bench_report.py                  # about 2 minutes on 2 cores, most of it the SIRT run
python benchmarks/bench_report.py --size 32 --steps 20 --repeats 1 --out /tmp/r.json   # a quick check
```
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import torch
from environment import environment
from typer.testing import CliRunner

from tomotime.cli.main import app
from tomotime.io import atomic_path
from tomotime.viz.report import write_report

HERE = Path(__file__).resolve().parent


def _run(*args) -> None:
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exit_code != 0:
        raise SystemExit(f"tomotime {' '.join(map(str, args))} failed:\n{result.output}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "report_cpu.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        began = time.perf_counter()
        _run("simulate", "nanorod-alloying", "--size", args.size, "--steps", args.steps, "--dose", 200,
             "--out", tmp / "sim")
        _run("reconstruct", tmp / "sim" / "series.mrc", "--method", "sirt", "--window", min(30, args.steps),
             "--iterations", 10, "--min", 0, "--device", "cpu", "--no-report", "--out", tmp / "dyn")
        setup_seconds = time.perf_counter() - began
        runs = []
        for k in range(args.repeats):
            cpu0 = resource.getrusage(resource.RUSAGE_SELF)
            result = write_report(tmp / "dyn", tmp / f"report{k}.html")
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
            runs.append({"seconds": round(result.seconds, 3),
                         "cpu_seconds": round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 3),
                         "bytes": result.bytes})
            print(f"report {k + 1}/{args.repeats}: {result.bytes / 1e6:.2f} MB in {result.seconds:.1f} s "
                  f"(sections: {', '.join(result.sections)})")
        peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    best = min(r["seconds"] for r in runs)
    size_mb = runs[0]["bytes"] / 1e6
    record = {
        "environment": environment(torch.device("cpu"), threads=args.threads),
        "settings": {"size": args.size, "steps": args.steps, "repeats": args.repeats, "method": "sirt",
                     "window": min(30, args.steps), "iterations": 10, "dose": 200},
        "run_setup_seconds": round(setup_seconds, 1),
        "sections": result.sections,
        "notes": result.notes,
        "measurements": runs,
        "report_mb": round(size_mb, 3),
        "report_seconds_best": best,
        "report_seconds_mean": round(sum(r["seconds"] for r in runs) / len(runs), 3),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "targets": {"report_mb_below": 20, "seconds_below": 30,
                    "met": bool(size_mb < 20 and max(r["seconds"] for r in runs) < 30)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out, overwrite=True) as path:
        path.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({k: record[k] for k in ("report_mb", "report_seconds_best", "report_seconds_mean",
                                             "targets")}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
