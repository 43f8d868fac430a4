"""`seqapp spot --stream` as users run it, on a checkpoint (PyTorch) and on its export (onnxruntime, no torch):
the real-time factor on one thread (start-up excluded by timing the same command on a 1-second file), the
peak resident memory of the whole process (GNU time's maximum RSS), whether both find the same
detections, and with --labels how many keywords each found and how many false alarms it made.

    python bench/speech/listen.py --checkpoint runs/kws_stream/best.pt --onnx spotter.onnx \
        --stream runs/streams/test20.wav --labels runs/streams/test20.csv"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]


def run(model: str | None, stream: str) -> tuple[float, float, str]:
    """(seconds, peak MB, stdout) of one `seqapp spot --stream` process on one thread."""
    flags = ["--checkpoint", model] if model else []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with tempfile.NamedTemporaryFile(suffix=".txt") as peak:
        started = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", peak.name, sys.executable, "-m", "seqapp", "spot",
                               *flags, "--stream", stream], cwd=ROOT, capture_output=True, text=True, env=env)
        seconds = time.perf_counter() - started
        if proc.returncode:
            sys.exit(proc.stderr.strip().splitlines()[-1])
        return seconds, int(Path(peak.name).read_text().split()[-1]) / 1024, proc.stdout


def scored(printed: str, labels: str, seconds: float, keywords: list[str] | None) -> str:
    """`seqapp spot --stream`'s printed detections ("   12.34 s  yes    0.912") scored against the stream's labels:
    `keywords` are the words to find (Speech Commands' ten by default), any other word is a false alarm's place."""
    from seqapp.speech.data.dataset import KEYWORDS
    from seqapp.speech.data.streams import read_labels
    from seqapp.speech.listening.decision import Detection
    from seqapp.speech.listening.scoring import score_detections

    detections = [Detection(label, float(time), float(score))
                  for time, _, label, score in (line.split() for line in printed.splitlines())]
    r = score_detections(detections, read_labels(labels), seconds, keywords or KEYWORDS)
    found = f"found {r['found']}/{r['keywords']}, " if r["keywords"] else ""
    return f"; {found}{r['wrong_word']} wrong words, {r['false_alarms']} false alarms"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", help="a streaming checkpoint (PyTorch)")
    p.add_argument("--onnx", action="append", default=[], help="an exported spotter; 'bundled' for the one inside")
    p.add_argument("--stream", required=True)
    p.add_argument("--labels", help="the stream's labels (make-stream's CSV): score each model's detections")
    p.add_argument("--keywords", help="the words --labels scores as keywords, comma-separated (default: Speech Commands' ten)")
    args = p.parse_args()
    audio_s = sf.info(args.stream).duration
    with tempfile.TemporaryDirectory() as tmp:
        second = str(Path(tmp) / "one_second.wav")
        sf.write(second, np.zeros(16000, np.float32), 16000)
        models = ([("PyTorch", args.checkpoint)] if args.checkpoint else []) + \
                 [(f"onnxruntime ({m})", None if m == "bundled" else m) for m in args.onnx]
        outputs = {}
        print(f"{args.stream}: {audio_s / 60:.1f} min")
        for name, model in models:
            start_s, _, _ = run(model, second)
            seconds, peak_mb, out = run(model, args.stream)
            outputs[name] = out
            print(f"{name:>40}: RTF {(seconds - start_s) / audio_s:.4f}, peak {peak_mb:.0f} MB, "
                  f"{len(out.splitlines())} detections, start-up {start_s:.1f} s"
                  + (scored(out, args.labels, audio_s, args.keywords and args.keywords.split(",")) if args.labels else ""))
        if len(set(outputs.values())) > 1:
            print("the detections differ between them")
        elif len(outputs) > 1:
            print("the same detections from each")


if __name__ == "__main__":
    main()
