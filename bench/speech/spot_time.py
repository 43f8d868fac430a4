"""Where the time of `seqapp spot --stream FILE` goes, one thread, as a user runs it: the whole command (start-up
excluded, by timing it against the same command on a 1-second file), then each layer of it in this process:
decoding and resampling the file, the streaming model per block, the decision layer per step, the verifier.

    python bench/speech/spot_time.py --checkpoint runs/kws_stream/best.pt --stream runs/streams/test20.wav

Block sizes: files are read in 1 s blocks (FILE_BLOCK_SECONDS), live audio in 0.1 s blocks; both are timed."""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from seqapp.speech.listening.spotter import load_spotter, run_stream  # noqa: E402
from seqapp.speech.data.sources import FILE_BLOCK_SECONDS, file_blocks
from seqapp.speech.listening.stream import SpotterStream  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def command_seconds(checkpoint: str, stream: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "seqapp", "spot", "--checkpoint", checkpoint, "--stream", stream],
                   cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - started


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--stream", required=True, help="a long recording (16 kHz WAV or FLAC)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seconds = sf.info(args.stream).frames / sf.info(args.stream).samplerate
    with tempfile.TemporaryDirectory() as tmp:
        short = Path(tmp) / "one_second.wav"
        sf.write(short, sf.read(args.stream, frames=16000, dtype="float32")[0], 16000)
        start_up = min(command_seconds(args.checkpoint, str(short)) for _ in range(2))
        whole = command_seconds(args.checkpoint, args.stream)
    rows = {"seqapp spot --stream (the command, start-up excluded)": whole - start_up}
    spotter = load_spotter(args.checkpoint)
    for block_s in (FILE_BLOCK_SECONDS, 0.1):
        blocks = list(file_blocks(args.stream, block_s))
        rows[f"decoding the file ({block_s:g} s blocks)"] = timed(lambda: list(file_blocks(args.stream, block_s)))
        stream = SpotterStream(spotter.model)
        rows[f"streaming model only ({block_s:g} s blocks)"] = timed(lambda: [stream.push(b) for b in blocks])
        alone = load_spotter(args.checkpoint)
        alone.verifier = None
        rows[f"model + decision layer, no verifier ({block_s:g} s blocks)"] = timed(lambda: run_stream(alone, blocks))
        calls = []
        if spotter.verifier is not None:
            verify = spotter.verify_scores
            spotter.verify_scores = lambda *a: (calls.append(1), verify(*a))[1]
        rows[f"model + decision layer + verifier ({block_s:g} s blocks)"] = timed(lambda: run_stream(spotter, blocks))
        if spotter.verifier is not None:
            spotter.verify_scores = verify
            rows[f"  verifier calls: {len(calls)} ({len(calls) / (seconds / 60):.1f} a minute)"] = float("nan")
    print(f"torch {torch.__version__}; {args.stream}: {seconds / 60:.1f} min; start-up of the command "
          f"{start_up:.2f} s; one thread")
    print(f"{'':66} {'seconds':>8} {'RTF':>8}")
    for name, spent in rows.items():
        print(f"{name:66} {spent:8.2f} {spent / seconds:8.4f}" if np.isfinite(spent) else name)


if __name__ == "__main__":
    main()
