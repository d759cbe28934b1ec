"""Run the commands of docs/real-data.md on the real datasets and draw docs/images/real-*.png.

Run from the repository root (the data folder ``../shared/data/real`` must exist)::

    python docs/_scripts/real_data.py --work /tmp/real-data

Every command below is the page's, run as ``python -m tomotime.cli.main``
with the data folder as ``DATA``; the reprojection checks are printed and
collected in ``benchmarks/results/real_data_checks_cpu.json``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "real"
IMAGES = ROOT / "docs" / "images"

N6 = "DATA/liquid_cell_au_assembly_n6"
NEEDLE = "DATA/etspy_needle_haadf"
NCEM = "DATA/ncem_idp_fib_haadf"

COMMANDS = {
    "liquid_cell_au_assembly_n6": [
        f"tomotime align {N6}/tiltseries_uint8.npy --angles {N6}/tiltseries.rawtlt --bin 4 -m xcorr,projection "
        "--out n6/aligned",
        "tomotime reconstruct n6/aligned/aligned.mrc -m sirt --min 0 --out n6/sirt",
        "tomotime check n6/sirt",
        "tomotime reconstruct n6/aligned/aligned.mrc -m sirt --min 0 --window 30 --times 15:100:17 --out n6/window",
        "tomotime check n6/window",
        "tomotime reconstruct n6/aligned/aligned.mrc -m dipster --steps 400 --times 15:100:17 --out n6/dipster",
        "tomotime check n6/dipster",
    ],
    "etspy_needle_haadf": [
        f"tomotime align {NEEDLE}/tiltseries.npy --rotate 90 -m xcorr,projection --out needle/aligned",
        "tomotime reconstruct needle/aligned/aligned.mrc -m sirt --min 0 --out needle/sirt",
        "tomotime check needle/sirt",
        "tomotime reconstruct needle/aligned/aligned.mrc -m inr --steps 300 --out needle/inr",
        "tomotime check needle/inr",
    ],
    "ncem_idp_fib_haadf": [
        f"tomotime align {NCEM}/haadf_tiltseries.npy --bin 4 -m xcorr --out ncem/aligned",
        "tomotime reconstruct ncem/aligned/aligned.mrc -m sirt --min 0 --thickness 32 --out ncem/sirt",
        "tomotime check ncem/sirt",
    ],
}


def run(command: str, work: Path) -> float:
    words = shlex.split(command.replace("DATA", str(DATA)))
    began = time.perf_counter()
    print("$", command, flush=True)
    subprocess.run([sys.executable, "-m", "tomotime.cli.main", *words[1:], "--overwrite"], cwd=work, check=True)
    return time.perf_counter() - began


def _volume(folder: Path) -> np.ndarray:
    from tomotime.io import read_volume, read_volume_series

    if (folder / "volumes.h5").is_file():
        series = read_volume_series(folder / "volumes.h5")
        return series[len(series) // 2]
    return read_volume(folder / "volume.mrc")[0]


def figure(name: str, work: Path, runs: list[str]) -> None:
    """Input view, aligned view, a section of each result, and the reprojection RMSE per view."""
    from tomotime.io import read_tilt_series

    prefix = {"liquid_cell_au_assembly_n6": "n6", "etspy_needle_haadf": "needle", "ncem_idp_fib_haadf": "ncem"}[name]
    aligned = read_tilt_series(work / prefix / "aligned" / "aligned.mrc")
    zero = int(np.argmin(np.abs(aligned.angles)))
    panels = [("aligned view at %.0f°" % aligned.angles[zero], aligned.images[zero])]
    for label in runs:
        volume = _volume(work / prefix / label)
        panels.append((f"{label}: XZ section", volume[:, volume.shape[1] // 2, :]))
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(2.3 * (len(panels) + 1) + 1.2, 2.5))
    for ax, (title, image) in zip(axes, panels):
        ax.imshow(image, cmap="gray")
        ax.set_title(title, fontsize=8)
        ax.set_axis_off()
    for label in runs:
        check = json.loads((work / prefix / label / "check.json").read_text())
        views = next(iter(check["methods"].values()))["views"]
        axes[-1].plot(views["angle_deg"], views["rmse_percent"], ".", ms=3, label=label)
    axes[-1].set(xlabel="tilt angle (°)", ylabel="reprojection RMSE (%)")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(IMAGES / f"real-{prefix}.png", dpi=70)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="folder for the runs")
    parser.add_argument("--only", choices=sorted(COMMANDS), default=None)
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"real data not found at {DATA}")
    args.work.mkdir(parents=True, exist_ok=True)
    checks_path = ROOT / "benchmarks" / "results" / "real_data_checks_cpu.json"
    checks = json.loads(checks_path.read_text()) if checks_path.is_file() else {}
    for name, commands in COMMANDS.items():
        if args.only not in (None, name):
            continue
        seconds = {c: round(run(c, args.work), 1) for c in commands}
        runs = [c.split()[2] for c in commands if c.startswith("tomotime check")]
        entry = {"seconds": seconds}
        for folder in runs:
            result = json.loads((args.work / folder / "check.json").read_text())
            method, value = next(iter(result["methods"].items()))
            entry[folder] = {"method": method, "rmse_percent_mean": round(value["views"]["rmse_percent_mean"], 3),
                             "ssim_mean": round(value["views"]["ssim_mean"], 4),
                             "worst_views": value["views"]["worst_views"],
                             "fake_dynamics_percent_max": None if not value["dynamics"]
                             else round(value["dynamics"]["change_percent_max"], 3)}
        checks[name] = entry
        checks_path.write_text(json.dumps(checks, indent=1) + "\n")
        figure(name, args.work, [f.split("/")[1] for f in runs])
        print(json.dumps(entry, indent=1), flush=True)


if __name__ == "__main__":
    main()
