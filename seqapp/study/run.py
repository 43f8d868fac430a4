"""`seqapp study`: simple against gated recurrent networks, measured on this machine. A recipe over the tasks:
it runs each training through the real command line (two at a time, one thread each), keeps every run's
folder, and skips what is already done, so a stopped study resumes where it stopped. Then it writes
report.md with tables and PNG plots."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CELL_VARIANTS = {  # label -> flags
    "rnn_tanh": ["--cell", "rnn_tanh"],
    "rnn_relu": ["--cell", "rnn_relu"],
    "lstm": ["--cell", "lstm"],
    "lstm, forget bias 1": ["--cell", "lstm", "--forget-bias", "1"],
    "gru": ["--cell", "gru"],
}


@dataclass
class Grid:
    cells: tuple = tuple(CELL_VARIANTS)
    adding_lengths: tuple = (50, 100, 200)
    seeds: tuple = (1, 2)
    synth_params: int = 17_000
    synth_steps: int = 2000
    copy_length: int = 5
    copy_steps: int = 2000
    gradient_length: int = 100
    lm_params: int = 200_000
    lm_steps: int = 300
    kws_params: int = 100_000
    kws_steps: int = 250
    lm_cells: tuple = ("rnn_tanh", "lstm", "lstm, forget bias 1", "gru")


DEFAULT = Grid()
FULL = Grid(adding_lengths=(50, 100, 200, 400), seeds=(1, 2, 3), synth_steps=3000, copy_steps=3000, lm_steps=1000,
            kws_steps=1000)


@dataclass
class Run:
    name: str
    args: list

    def folder(self, out: Path) -> Path:
        return out / "runs" / self.name


def synth_flags(grid: Grid, steps: int, lr: str = "2e-3", batch: str = "32") -> list[str]:
    return ["--steps", str(steps), "--eval-every", str(steps // 6), "--lr", lr, "--params", str(grid.synth_params),
            "--batch-size", batch, "--device", "cpu"]


def plan(grid: Grid, lm_data: str | None, kws_data: str | None) -> list[Run]:
    runs = []
    for length in grid.adding_lengths:
        for label in grid.cells:
            for seed in grid.seeds:
                runs.append(Run(f"adding_T{length}_{slug(label)}_s{seed}",
                                ["train", "synth", "--problem", "adding", "--length", str(length), *CELL_VARIANTS[label],
                                 "--seed", str(seed), *synth_flags(grid, grid.synth_steps)]))
    for label in grid.cells:
        runs.append(Run(f"copy_T{grid.copy_length}_{slug(label)}_s1",
                        ["train", "synth", "--problem", "copy", "--length", str(grid.copy_length), *CELL_VARIANTS[label],
                         "--seed", "1",
                         *synth_flags(grid, grid.copy_steps, lr="5e-3", batch="64")]))
    if lm_data:
        for label in grid.lm_cells:
            runs.append(Run(f"lm_{slug(label)}", ["train", "lm", "--data", lm_data, *CELL_VARIANTS[label], "--layers", "2",
                                                  "--params", str(grid.lm_params), "--steps", str(grid.lm_steps),
                                                  "--eval-every", str(grid.lm_steps // 5), "--batch-size", "32",
                                                  "--seq-len", "128", "--lr", "3e-3", "--warmup", "30",
                                                  "--val-tokens", "50000", "--device", "cpu"]))
    if kws_data:
        for label in grid.lm_cells:
            runs.append(Run(f"kws_{slug(label)}", ["train", "kws", "--data", kws_data, *CELL_VARIANTS[label],
                                                   "--params", str(grid.kws_params), "--steps", str(grid.kws_steps),
                                                   "--eval-every", str(grid.kws_steps // 5), "--batch-size", "64",
                                                   "--lr", "3e-3", "--warmup", "25", "--device", "cpu"]))
    return runs


def slug(label: str) -> str:
    return label.replace(", forget bias 1", "_fb1")


def execute(run: Run, out: Path) -> dict:
    """Train (or resume) one run through the CLI; its result from metrics.jsonl."""
    folder = run.folder(out)
    done = folder / "result.json"
    if done.exists():
        return json.loads(done.read_text())
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "seqapp", *run.args, "--out", str(folder), "--resume"],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return {"name": run.name, "error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines() if line]
    val = [r for r in rows if r["split"] == "val"]
    train = [r for r in rows if r["split"] == "train" and any(k.endswith("_per_s") for k in r)]
    rate_key = next((k for k in (train[-1] if train else {}) if k.endswith("_per_s")), None)
    config = json.loads((folder / "config.json").read_text())
    result = {"name": run.name, "val": val, "final": val[-1] if val else {},
              "rate": float(np.median([r[rate_key] for r in train])) if rate_key else None,
              "hidden": config["task_config"].get("hidden"), "wall_seconds": time.perf_counter() - started}
    done.write_text(json.dumps(result))
    return result


def run_all(runs: list[Run], out: Path, workers: int = 2) -> dict[str, dict]:
    results = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(execute, run, out) for run in runs]
        for i, future in enumerate(as_completed(futures), 1):
            result = future.result()
            results[result["name"]] = result
            final = result.get("final", {})
            shown = result.get("error") or ", ".join(f"{k} {v:.4g}" for k, v in final.items()
                                                     if k in ("loss", "accuracy") and isinstance(v, float))
            print(f"[{i}/{len(runs)}] {result['name']}: {shown}", flush=True)
    return results
