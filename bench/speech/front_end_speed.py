"""The speech embedding front end on a training-sized batch (32 x 4.5 s), three ways, each in its own process (the
allocator setting is process-wide); time a call and page faults:

- whole: read whole, glibc's default allocator settings;
- training: read 8 sequences at a time with the freed blocks kept for reuse (device.keep_freed_memory), the
  convolutions' weights in channels-last layout: as training does;
- contiguous: the same with the weights in PyTorch's default layout.

    python bench/speech/front_end_speed.py"""
from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
CALLS = 30
MODES = {"whole": "whole, glibc's defaults", "training": "8 at a time, blocks kept",
         "contiguous": "the same, default weight layout"}


def measure(mode: str) -> str:
    import torch

    from seqapp.device import keep_freed_memory
    from seqapp.speech.models import embedding

    if mode != "whole":
        keep_freed_memory()
    front = embedding.EmbeddingFrontEnd(piece_samples=embedding.PIECE_SAMPLES if mode != "whole" else 1 << 40)
    if mode == "contiguous":
        for i in range(front.net.count):
            setattr(front.net, f"w{i}", getattr(front.net, f"w{i}").contiguous())
    wave = 0.1 * torch.randn(32, 72_000, generator=torch.Generator().manual_seed(0))
    front(wave)
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(CALLS):
        front(wave)
    seconds = (time.perf_counter() - started) / CALLS
    after = resource.getrusage(resource.RUSAGE_SELF)
    faults, system = (after.ru_minflt - before.ru_minflt) / CALLS, (after.ru_stime - before.ru_stime) / CALLS
    return (f"{MODES[mode]:>31}: {seconds * 1000:.0f} ms a call, {system * 1000:.0f} ms of it system time, "
            f"{faults / 1000:.0f}k page faults")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        print(measure(sys.argv[1]))
    else:
        for mode in [*MODES, *MODES]:
            subprocess.run([sys.executable, __file__, mode], check=True)
