"""What a chunk of several embedding vectors per call buys the exported spotter: one export per chunk size, each run
by seqapp's onnxruntime spotter over the same stream on one thread; the real-time factor (the graphs alone, no
start-up), the detections (they must not change), and the wait a chunk adds before its first step is decided.

    python bench/speech/chunk_steps.py --checkpoint runs/custom/best.pt --stream runs/custom_bench/wake_words.wav"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from seqapp import checkpoint  # noqa: E402
from seqapp.speech.data.sources import file_blocks  # noqa: E402
from seqapp.speech.listening.export import export_kws  # noqa: E402
from seqapp.speech.listening.runtime import OnnxSpotter  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="a streaming checkpoint or bundle on the speech embedding")
    p.add_argument("--stream", required=True)
    p.add_argument("--steps", type=int, action="append", help="chunk sizes to try (default 1 2 3 4 6)")
    p.add_argument("--int8", action="store_true")
    args = p.parse_args()
    ckpt = checkpoint.load(args.checkpoint, task="kws")
    blocks = list(file_blocks(args.stream, 1.0))
    seconds = sum(len(b) for b in blocks) / 16000
    print(f"{args.stream}: {seconds / 60:.1f} min")
    reference = None
    with tempfile.TemporaryDirectory() as tmp:
        for k in args.steps or [1, 2, 3, 4, 6]:
            out = Path(tmp) / f"k{k}.onnx"
            export_kws(ckpt, out, args.int8, steps=k)
            spotter = OnnxSpotter(out)
            started = time.perf_counter()
            found = spotter.run(blocks)
            rtf = (time.perf_counter() - started) / seconds
            detections = [(d.label, round(d.time, 3)) for d in found]
            reference = reference or detections
            same = "the same" if detections == reference else f"differ from k={args.steps[0] if args.steps else 1}"
            print(f"{k} vectors a call ({spotter.meta['chunk_samples']} samples read, {k * 80} ms of steps): "
                  f"RTF {rtf:.4f}, {len(found)} detections ({same}), up to {(k - 1) * 80} ms of waiting; "
                  f"{out.stat().st_size / 1e6:.1f} MB", flush=True)


if __name__ == "__main__":
    main()
