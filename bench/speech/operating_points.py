"""A spotter at its calibrated operating points (--false-alarms-per-hour), on test streams it never saw: keywords
found in a labelled stream, false alarms per hour there and on keyword-free streams, latency.

    python bench/speech/operating_points.py --model "two stages=runs/kws_stream/best.pt" \
        --keywords runs/streams/test20.wav --free runs/streams/free30.wav --free runs/streams/speech_test.wav \
        [--alone] [--json docs/kws_stream/points.json]

Each stream's .csv labels sit beside it. The thresholds are those calibrated on the validation streams
(training-side data only); the rates asked for are the calibration's. --alone: a bundle's streaming model
without its verifier (the calibration stored for it, from checkpoint selection)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from seqapp import checkpoint  # noqa: E402
from seqapp.speech.data.streams import read_labels  # noqa: E402
from seqapp.speech.listening.spotter import detections_in, run_stream, spotter_from_checkpoint  # noqa: E402
from seqapp.speech.data.sources import file_blocks  # noqa: E402
from seqapp.speech.listening.scoring import score_detections  # noqa: E402

RATES = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0)


def points(path: str, streams: dict, alone: bool) -> list[dict]:
    ckpt = checkpoint.load(path, task="kws")
    if alone:
        ckpt = {k: v for k, v in ckpt.items() if k not in ("verifier", "calibration")}
    base = spotter_from_checkpoint(ckpt, path)
    runs = {p: run_stream(base, [audio], decide=False)[:2] for p, (audio, _) in streams.items()}
    memos = {p: {} for p in streams}
    rows = []
    for rate in RATES:
        spotter = spotter_from_checkpoint(ckpt, path, false_alarms_per_hour=rate)
        words = [n for n in spotter.names if not n.startswith("_")]
        row = {"false_alarms_per_hour_asked": rate}
        for p, (audio, truth) in streams.items():
            times, probs = runs[p]
            found = detections_in(spotter, times, probs, audio if spotter.verifier is not None else None, memos[p])
            row[Path(p).stem] = score_detections(found, truth, len(audio) / 16000, words)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, help="NAME=checkpoint")
    parser.add_argument("--keywords", required=True)
    parser.add_argument("--free", action="append", default=[])
    parser.add_argument("--alone", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    import numpy as np

    streams = {p: (np.concatenate(list(file_blocks(p, 1.0))), read_labels(Path(p).with_suffix(".csv")))
               for p in [args.keywords, *args.free]}
    results = {}
    for spec in args.model:
        name, path = spec.split("=", 1)
        rows = results[name] = points(path, streams, args.alone)
        k = Path(args.keywords).stem
        print(f"\n{name} ({path}{', streaming model alone' if args.alone else ''})")
        print(f"{'asked FA/h':>10} {'found ' + k:>14} {'FA/h ' + k:>12} " + " ".join(f"{'FA/h ' + Path(p).stem:>18}"
                                                                                for p in args.free) + f" {'latency':>8}")
        for r in rows:
            lat = r[k]["latency_median_s"]
            print(f"{r['false_alarms_per_hour_asked']:10g} {r[k]['found_rate']:14.1%} {r[k]['false_alarms_per_hour']:12.1f} "
                  + " ".join(f"{r[Path(p).stem]['false_alarms_per_hour']:18.1f}" for p in args.free)
                  + f" {(lat or 0) * 1000:6.0f}ms")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
