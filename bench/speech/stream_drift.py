"""Does the carried state drift over a long recording? One stream, state never reset, scored quarter by
quarter: a model whose state degrades finds fewer keywords, or raises more false alarms, later on.

    python bench/speech/stream_drift.py --model chosen=runs/kws_stream/best.pt --model naive=runs/kws_stream_naive/best.pt \
        --stream runs/streams/hour.wav [--parts 4]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from seqapp.speech.listening.spotter import load_spotter, run_stream  # noqa: E402
from seqapp.speech.data.streams import read_labels  # noqa: E402
from seqapp.speech.data.sources import file_blocks  # noqa: E402
from seqapp.speech.listening.scoring import score_detections  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, help="NAME=checkpoint")
    parser.add_argument("--stream", required=True)
    parser.add_argument("--parts", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(1)
    truth = read_labels(Path(args.stream).with_suffix(".csv"))
    for spec in args.model:
        name, checkpoint = spec.split("=", 1)
        spotter = load_spotter(checkpoint)
        times, _, detections = run_stream(spotter, file_blocks(args.stream))
        total = float(times[-1])
        print(f"\n{name}: {spotter.note or f'threshold {spotter.decision.threshold}'}, {total / 60:.0f} minutes, "
              "state never reset")
        print(f"{'part':>14} {'keywords':>9} {'found':>7} {'wrong':>6} {'false alarms':>13} {'FA/hour':>8}")
        for i in range(args.parts):
            lo, hi = total * i / args.parts, total * (i + 1) / args.parts
            part_truth = [(w, s, e) for w, s, e in truth if lo <= s < hi]
            part = [d for d in detections if lo <= d.time < hi]
            r = score_detections(part, part_truth, hi - lo)
            print(f"{lo / 60:5.0f}-{hi / 60:3.0f} min {r['keywords']:9d} {r['found_rate']:7.1%} {r['wrong_word']:6d} "
                  f"{r['false_alarms']:13d} {r['false_alarms_per_hour']:8.1f}")


if __name__ == "__main__":
    main()
