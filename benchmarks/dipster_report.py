"""Table and figure of the DIP-STER benchmark (``bench_dipster.py``), from its results dictionary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from bench_dynamic_baselines import OWN_LABELS, OWN_MEASURE, scenario_error
from matplotlib.figure import Figure

from tomotime.io import atomic_path

COLOURS = {"SIRT": "C0", "DIP-STER": "C3"}


def _fmt(value: float | None, spec: str) -> str:
    """``value`` formatted by ``spec`` (e.g. ``"8.1f"``), or a dash as wide."""
    return "-".rjust(int(spec.split(".")[0].rstrip("df") or 0)) if value is None else format(value, spec)


def format_table(results: dict[str, Any]) -> str:
    head = (f"{'case':<28} {'method':<8} {'SSIM mean':>9} {'worst':>6} {'RMSE% mean':>10} {'worst':>6} "
            f"{'scenario error':>20} {'steps':>6} {'train s':>8} {'cpu s':>6} {'export s':>8} {'s to target':>11} "
            f"{'s to SIRT':>9}")
    lines = [head, "-" * len(head)]
    for case, entry in results.get("scenarios", {}).items():
        for label, m in entry["methods"].items():
            s = m["summary"]
            extra = scenario_error(s)
            lines.append(f"{case:<28} {label:<8} {s['ssim_mean']:9.3f} {s['ssim_worst']:6.3f} {s['rmse_mean']:10.2f} "
                         f"{s['rmse_worst']:6.2f} {extra:>20} {_fmt(m.get('train_steps'), '6d')} "
                         f"{_fmt(m.get('train_seconds', m['seconds']), '8.0f')} "
                         f"{_fmt(m.get('train_cpu_s', m.get('cpu_s')), '6.0f')} "
                         f"{_fmt(m.get('export_seconds'), '8.1f')} {_fmt(m.get('seconds_to_target_ssim'), '11.0f')} "
                         f"{_fmt(m.get('seconds_to_sirt_ssim'), '9.0f')}")
        for label, rows in entry.get("targets", {}).items():
            verdict = ", ".join(f"{k} {v['value']:.3g} {'met' if v['met'] else 'MISSED'} ({v['target']:g})"
                                for k, v in rows.items())
            lines.append(f"{'':<28} {label:<8} targets: {verdict}")
    lines.append("scenario error: mean/worst over time (alloying in pp from step 5 on; S/V relative error in %); "
                 "steps: DIP-STER's training steps; SIRT's wall/CPU seconds in the train columns; s to target / to "
                 "SIRT: training seconds until the probed SSIM (10 time points) first met the target / SIRT's mean")
    static = results.get("static_checks", {})
    if static:
        lines += ["", (f"{'static object':<28} {'method':<8} {'step change':>11} {'worst':>7} {'voxel std':>9} "
                       f"{'SSIM mean':>9}")]
        for name, entry in static.items():
            for label, m in entry["methods"].items():
                c = m["temporal_change"]
                ssim = m.get("summary", {}).get("ssim_mean")
                lines.append(f"{name:<28} {label:<8} {c['step_change_mean']:11.4f} {c['step_change_worst']:7.4f} "
                             f"{c['voxel_std_relative']:9.4f} {_fmt(ssim, '9.3f')}")
            r = entry["ratios_dipster_to_sirt"]
            lines.append(f"{name:<28} {'ratio':<8} {r['step_change_mean']:11.3f} {r['step_change_worst']:7.3f} "
                         f"{r['voxel_std_relative']:9.3f}")
        lines.append("step change: mean_t ||v_t - v_(t-1)|| / ||v_mean|| (worst = max over t); voxel std: per-voxel "
                     "std over time averaged in the object / object mean; ratio: DIP-STER / SIRT")
    sizes = [(case, e["methods"]["DIP-STER"]["model_size"]) for case, e in results.get("scenarios", {}).items()]
    if sizes:
        lines += ["", f"{'model size':<28} {'params':>9} {'file MB':>8} {'raw 4D MB':>10} {'raw/file':>9}"]
        for case, z in sizes:
            lines.append(f"{case:<28} {z['parameters']:9d} {z['file_bytes'] / 1e6:8.2f} "
                         f"{z['raw_float32_bytes'] / 1e6:10.1f} {z['ratio_raw_to_file']:9.0f}")
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path, *, targets: dict[str, dict[str, float]]) -> Path:
    """Per scenario: SSIM, RMSE %, the scenario's measure over time and the probed SSIM over training time;
    per static object: the relative step change over time and the time-mean middle slices."""
    scenarios, static = results.get("scenarios", {}), results.get("static_checks", {})
    rows = len(scenarios) + len(static)
    fig = Figure(figsize=(15, 3.2 * max(rows, 1)), layout="tight")
    axes = fig.subplots(max(rows, 1), 4, squeeze=False)
    for row, (case, entry) in zip(axes, scenarios.items()):
        times = np.asarray(entry["times"])
        own = OWN_MEASURE.get(entry["scenario"])
        for label, m in entry["methods"].items():
            c = m["curves"]
            for ax, key in zip(row[:2], ("ssim", "rmse")):
                ax.plot(times, c[key], color=COLOURS[label], lw=1.5, label=label)
            if own in c:
                row[2].plot(times, c[own], color=COLOURS[label], lw=1.5, label=label)
        sirt_curves = entry["methods"]["SIRT"]["curves"]
        if own in sirt_curves:
            row[2].plot(times, sirt_curves[f"{own}_truth"], color="k", lw=1, label="truth")
            row[2].set_ylabel(OWN_LABELS[own])
        dip = entry["methods"]["DIP-STER"]
        probes = dip.get("probes", [])
        row[3].plot([p["train_seconds"] for p in probes], [p["ssim_mean"] for p in probes], "o-",
                    color=COLOURS["DIP-STER"], label="DIP-STER mean")
        row[3].plot([p["train_seconds"] for p in probes], [p["ssim_worst"] for p in probes], "o--",
                    color=COLOURS["DIP-STER"], label="DIP-STER worst")
        row[3].axhline(dip["sirt_probe_ssim_mean"], color=COLOURS["SIRT"], label="SIRT mean")
        target = targets.get(entry["scenario"], {}).get("ssim_worst")
        if target:
            row[3].axhline(target, color="k", ls=":", label="target")
        row[3].set_xlabel("training time (s)")
        row[3].set_ylabel("SSIM at 10 probe times")
        row[0].set_ylabel(f"{case}\nSSIM (Otsu mask)")
        row[1].set_ylabel("RMSE (%)")
        for ax in row[:3]:
            ax.set_xlabel("time (s)")
        for ax in row:
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    for row, (name, entry) in zip(axes[len(scenarios):], static.items()):
        for label, m in entry["methods"].items():
            curve = m["temporal_change"]["step_change_curve"]
            row[0].plot(np.arange(1, len(curve) + 1), curve, color=COLOURS[label], lw=1.2, label=label)
        row[0].set_ylabel(f"{name}\n||v_t - v_(t-1)|| / ||v_mean||")
        row[0].set_xlabel("time index")
        row[0].grid(alpha=0.3)
        row[0].legend(fontsize=7)
        for ax, (label, image) in zip(row[1:3], entry["mean_slices"].items()):
            ax.imshow(np.asarray(image), cmap="gray")
            ax.set_title(f"{label}: time-mean, middle slice", fontsize=8)
            ax.set_axis_off()
        row[3].set_axis_off()
    with atomic_path(path, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    return path
