"""The speech embedding front end on a training-sized batch (32 x 4.5 s): read whole with glibc's default
allocator settings, against read 8 sequences at a time with the blocks kept for reuse (device.keep_freed_memory),
as training does. Each in its own process (the allocator setting is process-wide); time a call and page faults.

    python bench/speech/front_end_speed.py"""
from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
CALLS = 30


def measure(as_training: bool) -> str:
    import torch

    from seqapp.device import keep_freed_memory
    from seqapp.speech.models import embedding

    if as_training:
        keep_freed_memory()
    front = embedding.EmbeddingFrontEnd(piece_samples=embedding.PIECE_SAMPLES if as_training else 1 << 40)
    wave = 0.1 * torch.randn(32, 72_000, generator=torch.Generator().manual_seed(0))
    front(wave)
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(CALLS):
        front(wave)
    seconds = (time.perf_counter() - started) / CALLS
    after = resource.getrusage(resource.RUSAGE_SELF)
    faults, system = (after.ru_minflt - before.ru_minflt) / CALLS, (after.ru_stime - before.ru_stime) / CALLS
    what = "8 at a time, blocks kept" if as_training else "whole, glibc's defaults"
    return (f"{what:>26}: {seconds * 1000:.0f} ms a call, {system * 1000:.0f} ms of it system time, "
            f"{faults / 1000:.0f}k page faults")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        print(measure(sys.argv[1] == "training"))
    else:
        for mode in ("whole", "training", "whole", "training"):
            subprocess.run([sys.executable, __file__, mode], check=True)
