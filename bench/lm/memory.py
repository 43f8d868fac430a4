"""Peak memory and speed of training on a large generated text file.

    python bench/lm/memory.py --source ../shared/data/tinyshakespeare/input.txt --mb 500

Writes a corpus of --mb megabytes (the source's lines, shuffled, repeated), trains a char LM on it for a
few steps through the real CLI, and samples the process's memory while it runs: peak resident memory
(VmHWM, which includes pages of memory-mapped files) and peak anonymous memory (RssAnon, what the process
itself holds). The Python string of the corpus alone would take --mb megabytes.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def write_corpus(source: Path, path: Path, megabytes: int) -> int:
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    rng = random.Random(0)
    written, target = 0, megabytes * 1_000_000
    with path.open("w", encoding="utf-8") as f:
        while written < target:
            rng.shuffle(lines)
            block = "".join(lines)[: target - written]
            f.write(block)
            written += len(block)
    return written


def sample_memory(pid: int, peaks: dict, done: threading.Event) -> None:
    while not done.is_set():
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            break
        for line in status.splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "RssAnon", "RssFile"):
                peaks[key] = max(peaks.get(key, 0), int(value.split()[0]) // 1024)
        time.sleep(0.2)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--source", default=str(ROOT / "data/tinyshakespeare/input.txt"))
    p.add_argument("--mb", type=int, default=500)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "big.txt"
        start = time.perf_counter()
        chars = write_corpus(Path(args.source), corpus, args.mb)
        print(f"wrote {chars:,} characters in {time.perf_counter() - start:.0f} s")
        out = Path(tmp) / "run"
        cmd = [sys.executable, str(ROOT / "train.py"), "lm", "--data", str(corpus), "--out", str(out),
               "--steps", str(args.steps), "--eval-every", str(args.steps), "--val-tokens", "100000",
               "--device", "cpu"]
        peaks: dict = {}
        done = threading.Event()
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, "HF_DATASETS_CACHE": str(Path(tmp) / "hf")})
        watcher = threading.Thread(target=sample_memory, args=(proc.pid, peaks, done))
        watcher.start()
        output = proc.communicate()[0]
        done.set()
        watcher.join()
        wall = time.perf_counter() - start
        if proc.returncode:
            sys.exit(output[-2000:])
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        rates = [r["tok_per_s"] for r in rows if "tok_per_s" in r][1:]  # the first window holds start-up
        figures = {"corpus_mb": args.mb, "chars": chars, "steps": args.steps, "wall_s": round(wall, 1),
                   "peak_rss_mb": peaks.get("VmHWM"), "peak_anon_mb": peaks.get("RssAnon"),
                   "peak_file_mb": peaks.get("RssFile"),
                   "train_tok_per_s": round(sum(rates) / len(rates)) if rates else None,
                   "token_file_bytes": sum(f.stat().st_size for f in (out / "data").glob("*.ids"))}
        print(json.dumps(figures, indent=2))
        if args.json:
            Path(args.json).write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
