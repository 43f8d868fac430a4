"""The study's report: markdown tables and PNG plots from the runs' results."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .run import Grid, slug


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def final(results: dict, name: str, key: str = "loss"):
    r = results.get(name, {})
    return r.get("final", {}).get(key)


def adding_section(results: dict, grid: Grid, out: Path) -> list[str]:
    lines = ["## The adding problem", "",
             f"Validation MSE after {grid.synth_steps} steps (batch 32, Adam lr 2e-3, ~{grid.synth_params:,} parameters "
             f"each), mean ± std over seeds {', '.join(map(str, grid.seeds))}; in brackets, the seeds that beat the "
             "memoryless baseline 0.167 by 10× (MSE < 0.0167). Lower is better.", "",
             "| cell | hidden | " + " | ".join(f"T = {t}" for t in grid.adding_lengths) + " |",
             "|---|---:|" + "---:|" * len(grid.adding_lengths)]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for label in grid.cells:
        cells, means, stds, hidden = [], [], [], None
        for t in grid.adding_lengths:
            values = [final(results, f"adding_T{t}_{slug(label)}_s{s}") for s in grid.seeds]
            values = [v for v in values if v is not None]
            hidden = hidden or next((results[f"adding_T{t}_{slug(label)}_s{s}"].get("hidden") for s in grid.seeds
                                     if f"adding_T{t}_{slug(label)}_s{s}" in results), None)
            if not values:
                cells.append("–")
                means.append(np.nan)
                stds.append(0)
                continue
            solved = sum(v < 0.0167 for v in values)
            cells.append(f"{np.mean(values):.4f} ± {np.std(values):.4f} ({solved}/{len(values)})")
            means.append(np.mean(values))
            stds.append(np.std(values))
        lines.append(f"| {label} | {hidden} | " + " | ".join(cells) + " |")
        ax.errorbar(grid.adding_lengths, means, yerr=stds, marker="o", capsize=3, label=label)
    ax.axhline(1 / 6, color="grey", linestyle=":", label="baseline (predict 1): 0.167")
    ax.set_yscale("log")
    ax.set_xlabel("T (sequence length)")
    ax.set_ylabel("validation MSE")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(out / "adding.png", dpi=110)
    plt.close(fig)
    return lines + ["", "![adding problem](adding.png)", ""]


def copy_section(results: dict, grid: Grid) -> list[str]:
    import math

    base = 10 * math.log(8) / (grid.copy_length + 20)
    lines = ["## The copy-memory task", "",
             f"T = {grid.copy_length} blanks between 10 symbols (alphabet of 8) and their recall, {grid.copy_steps} steps "
             "(lr 5e-3, batch 64: at T = 20 no cell left the baseline in the default budget). "
             f"The memoryless baseline is 10 ln 8 / (T + 20) = {base:.4f} nats per step; recall accuracy is over the "
             "10 symbols to reproduce (chance 1/8).", "",
             "| cell | hidden | cross-entropy | recall accuracy |", "|---|---:|---:|---:|"]
    for label in grid.cells:
        name = f"copy_T{grid.copy_length}_{slug(label)}_s1"
        loss, acc = final(results, name), final(results, name, "accuracy")
        if loss is not None:
            lines.append(f"| {label} | {results[name].get('hidden')} | {loss:.4f} | {acc:.3f} |")
    return lines + [""]


def gradient_section(out: Path, grid: Grid) -> list[str]:
    """dL/dh against distance, per cell, at initialization and after training (seed 1, T = gradient_length)."""
    from .. import checkpoint
    from ..long_range.gradients import init_and_trained
    from ..long_range.task import model_from_checkpoint

    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    marks = [k for k in (10, 50, 100) if k < grid.gradient_length] or [grid.gradient_length - 1]
    rows = ["## Gradient flow", "",
            f"|dL/dh(T−k)| / |dL/dh(T)| on the adding problem, T = {grid.gradient_length}, 64 sequences, float64, at "
            "PyTorch's default initialization (same seed) and after training. The vanishing gradient, measured.", "",
            "| cell | " + " | ".join(f"k = {k}, {when}" for when in ("init", "trained") for k in marks) + " |",
            "|---|" + "---:|" * (2 * len(marks))]
    for i, label in enumerate(grid.cells):
        path = out / "runs" / f"adding_T{grid.gradient_length}_{slug(label)}_s1" / "best.pt"
        if not path.exists():
            continue
        trained, cfg = model_from_checkpoint(checkpoint.load(path, task="synth"))
        curves = init_and_trained(cfg, trained)
        init, done = curves["initialization"]["h"], curves["trained"]["h"]
        colour = f"C{i}"
        k = np.arange(len(init))
        ax.semilogy(k[init > 0], init[init > 0], linestyle="--", color=colour, alpha=0.6)
        ax.semilogy(k[done > 0], done[done > 0], color=colour, label=label)
        rows.append(f"| {label} | " + " | ".join(f"{curve[k]:.1e}" for curve in (init, done) for k in marks) + " |")
    ax.set_xlabel("distance k from the loss (steps)")
    ax.set_ylabel("|dL/dh(T-k)| / |dL/dh(T)|")
    ax.set_title("solid: trained; dashed: at initialization", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(out / "gradients.png", dpi=110)
    plt.close(fig)
    return rows + ["", "![gradient flow](gradients.png)", ""]


def at_time(val: list[dict], seconds: float, key: str):
    """The last validation figure reached within `seconds` of training."""
    reached = [r for r in val if r.get("train_seconds", 0) <= seconds + 1e-9]
    return reached[-1][key] if reached else None


def task_section(results: dict, grid: Grid, prefix: str, key: str, unit: str, title: str, steps: int) -> list[str]:
    names = [f"{prefix}_{slug(label)}" for label in grid.lm_cells]
    present = [(label, results[n]) for label, n in zip(grid.lm_cells, names) if n in results and "final" in results[n]]
    if not present:
        return []
    budget = min(r["final"].get("train_seconds", 0) for _, r in present)
    better = "lower" if key == "loss" else "higher"
    lines = [f"## {title}", "", f"Each cell at about the same number of parameters, {steps} steps; the figure at a "
             f"fixed wall time is the last validation within {budget:.0f} s of training (the fastest cell's whole run). "
             f"Validation {key}, {better} is better.", "",
             f"| cell | hidden | {key} at {steps} steps | {key} within {budget:.0f} s | training {unit}/s |",
             "|---|---:|---:|---:|---:|"]
    for label, r in present:
        fixed = at_time(r["val"], budget, key)
        fixed_text = "–" if fixed is None else f"{fixed:.4f}"
        rate_text = "–" if r["rate"] is None else f"{r['rate']:,.0f}"
        lines.append(f"| {label} | {r.get('hidden')} | {r['final'][key]:.4f} | {fixed_text} | {rate_text} |")
    return lines + [""]


def write_report(results: dict, grid: Grid, out: Path, machine: str, workers: int) -> Path:
    minutes = sum(r.get("wall_seconds", 0) for r in results.values()) / 60
    lines = ["# Simple against gated recurrent networks, measured", "",
             f"Written by `seqapp study` on {machine}: {len(results)} runs, {minutes:.0f} minutes of run time in all, "
             f"about {minutes / workers:.0f} minutes of wall time at {workers} runs at a time (one thread each). "
             "Every figure is from these runs.", ""]
    lines += adding_section(results, grid, out)
    lines += copy_section(results, grid)
    lines += gradient_section(out, grid)
    lines += task_section(results, grid, "lm", "loss", "tok", "Character LM on Tiny Shakespeare", grid.lm_steps)
    lines += task_section(results, grid, "kws", "accuracy", "clip", "Keyword spotting (clip model)", grid.kws_steps)
    errors = [r for r in results.values() if "error" in r]
    if errors:
        lines += ["## Runs that failed", ""] + [f"- {r['name']}: {r['error']}" for r in errors] + [""]
    report = out / "report.md"
    report.write_text("\n".join(lines))
    (out / "results.json").write_text(json.dumps(results))
    return report
