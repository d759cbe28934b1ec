"""Markdown tables of the INR benchmark results (the tables of ``benchmarks/README.md``).

    python benchmarks/inr_report.py
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = {"wedge": 0.98, "sparse": 0.95, "dose": 0.85, "axis": 0.97}
PAPER = {"wedge": (0.985, 0.972), "sparse": (0.957, 0.427), "dose": (0.857, 0.293), "axis": (0.974, None)}


def _load(name: str) -> dict | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def sweeps(name: str = "inr_cpu_32.json") -> str:
    data = _load(name)
    if data is None:
        return ""
    lines = ["| scenario | views | SIRT SSIM (paper-style) | INR SSIM (paper-style) | INR steps / epochs / s | "
             "target (128^3) | paper INR / SIRT |", "|---|---|---|---|---|---|---|"]
    rows = {k: r for k, r in data["scenarios"].items() if k == r["scenario"]}  # variants: see axis()
    for key, row in rows.items():
        sirt, inr, base = row["sirt"], row["inr"], row["scenario"]
        extra = ""
        if "sirt_true_poses" in row:
            extra = f"; with true poses {row['sirt_true_poses']['ssim']:.3f}"
        paper = PAPER[base]
        lines.append(f"| {key}: {row['description']} | {row['views']} | {sirt['ssim']:.3f} ({sirt['ssim_paper']:.3f})"
                     f"{extra} | {inr['ssim']:.3f} ({inr['ssim_paper']:.3f}) | {inr['steps']} / {inr['epochs']:g} / "
                     f"{inr['seconds']:.0f} | >= {TARGETS[base]} | {paper[0]} / {paper[1] or '-'} |")
    poses = [(k, r["inr"]["poses"]) for k, r in rows.items() if "poses" in r["inr"]]
    for key, p in poses:
        lines.append(f"\n{key}: shifts {p['shift_rms_px']:.3f} px RMS after alignment ({p['shift_rms_px_unaligned']:.2f}"
                     f" px before), tilt-axis error {p['axis_error_deg']:+.2f} deg")
    return "\n".join(lines)


def axis(names: tuple[str, ...] = ("inr_cpu_32.json", "inr_cpu_48.json")) -> str:
    """The tilt-axis rows of every size: pose model, axis and shift errors, SSIM against SIRT with the true poses."""
    lines = ["| size | poses learned | tilt-axis error (sin^2-weighted / shared angle) | shift RMS px (before) | "
             "INR SSIM | SIRT SSIM unaligned / true poses | INR s |", "|---|---|---|---|---|---|---|"]
    for name in names:
        data = _load(name)
        for key, row in (data or {}).get("scenarios", {}).items():
            if row["scenario"] != "axis":
                continue
            p, inr = row["inr"]["poses"], row["inr"]
            per_view = row.get("inr_options", {}).get("align_angles", True)
            mode = "shifts, z1/z3 per view, shared axis" if per_view else "shifts, shared axis"
            other = [f"{k}={v}" for k, v in row.get("inr_options", {}).items() if k != "align_angles"]
            mode += "".join(f", {o}" for o in other) + f"; {inr['steps']} steps"
            true = row.get("sirt_true_poses", {}).get("ssim")
            shared = p.get("shared_axis_error_deg")
            lines.append(f"| {row['size']}^3 | {mode} | {p['axis_error_deg']:+.2f} / "
                         f"{'-' if shared is None else f'{shared:+.2f}'} deg | {p['shift_rms_px']:.3f} "
                         f"({p['shift_rms_px_unaligned']:.2f}) | {inr['ssim']:.3f} | {row['sirt']['ssim']:.3f} / "
                         f"{'-' if true is None else f'{true:.3f}'} | {inr['seconds']:.0f} |")
    return "\n".join(lines) if len(lines) > 2 else ""


def speed() -> str:
    data = _load("inr_quantem_cpu.json")
    if data is None:
        return ""
    q, t = data["quantem"], data["tomotime"]
    return "\n".join([
        "| implementation | s / epoch | wall time | SSIM (paper-style) |", "|---|---|---|---|",
        f"| quantem {data['environment'].get('quantem')} (H-Siren 3x256) | {sum(q['epoch_seconds']) / len(q['epoch_seconds']):.1f} "
        f"| {q['seconds']:.0f} s ({len(q['epoch_seconds'])} epochs) | {q['ssim']:.3f} ({q['ssim_paper']:.3f}) |",
        f"| tomotime (grid, --align) | {t['epoch_seconds']:.2f} | {t['seconds']:.0f} s ({t['epochs']:g} epochs) | "
        f"{t['ssim']:.3f} ({t['ssim_paper']:.3f}) |", f"\nratio of time per epoch: {data['epoch_time_ratio']}x"])


def fields() -> str:
    data = _load("inr_fields_cpu.json")
    if data is None:
        return ""
    lines = ["| field | parameters | steps in the time | SSIM (paper-style) |", "|---|---|---|---|"]
    for r in data["fields"]:
        lines.append(f"| {r['field']} | {r['parameters']:,} | {r['steps']} in {r['seconds']:.0f} s | "
                     f"{r['ssim']:.3f} ({r['ssim_paper']:.3f}) |")
    return "\n".join(lines)


def dynamic() -> str:
    data = _load("inr_dynamic_cpu.json")
    if data is None:
        return ""
    lines = ["| scenario | method | SSIM mean / worst | RMSE % mean | train+export s |", "|---|---|---|---|---|"]
    for name, rows in data["scenarios"].items():
        for label, r in rows.items():
            lines.append(f"| {name} | {label} | {r['ssim_mean']:.3f} / {r['ssim_worst']:.3f} | {r['rmse_mean']:.2f} | "
                         f"{r['seconds']:.0f} |")
    static = data.get("static_sea_mine", {})
    if static:
        lines.append("\nfake dynamics on a static sea mine (mean relative step change): " + ", ".join(
            f"{k} {v['step_change_mean']:.4f}" for k, v in static.items()))
    return "\n".join(lines)


if __name__ == "__main__":
    for part in (sweeps(), axis(), speed(), fields(), dynamic()):
        if part:
            print(part, end="\n\n")
