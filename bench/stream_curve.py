"""The streaming spotter's operating curve, as its target is stated: for each threshold, the keywords missed
in a labelled test stream against the false alarms per hour in a keyword-free stream of other words. Several
checkpoints side by side.

    python bench/stream_curve.py --model chosen=runs/kws_stream/best.pt --model naive=runs/kws_stream_naive/best.pt \
        --keywords runs/streams/test20.wav --free runs/streams/free30.wav --out docs/kws_stream/curve.png

Each stream's .csv labels sit beside it (as make-stream writes them)."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seqapp.speech.cli import run_stream, streaming_model  # noqa: E402
from seqapp.speech.decision import detect  # noqa: E402
from seqapp.speech.make_stream import read_labels  # noqa: E402
from seqapp.speech.stream import file_blocks  # noqa: E402
from seqapp.speech.stream_score import score_detections  # noqa: E402

THRESHOLDS = np.round(np.arange(0.3, 0.99, 0.05), 2)


def curve(checkpoint: str, keywords: str, free: str) -> list[dict]:
    rows = []
    model, names, decision = streaming_model(checkpoint)
    kt, kp, _ = run_stream(model, names, decision, file_blocks(keywords), decide=False)
    ft, fp, _ = run_stream(model, names, decision, file_blocks(free), decide=False)
    truth_k, truth_f = read_labels(Path(keywords).with_suffix(".csv")), read_labels(Path(free).with_suffix(".csv"))
    for threshold in THRESHOLDS:
        cfg = replace(decision, threshold=float(threshold))
        k = score_detections(detect(kt, kp, names, cfg, model.step_seconds), truth_k, float(kt[-1]))
        f = score_detections(detect(ft, fp, names, cfg, model.step_seconds), truth_f, float(ft[-1]))
        rows.append({"threshold": float(threshold), "found_rate": k["found_rate"], "wrong_word": k["wrong_word"],
                     "false_alarms_per_hour_keyword_stream": k["false_alarms_per_hour"],
                     "false_alarms_per_hour_free": f["false_alarms_per_hour"],
                     "latency_median_s": k["latency_median_s"]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, help="NAME=checkpoint")
    parser.add_argument("--keywords", required=True)
    parser.add_argument("--free", required=True)
    parser.add_argument("--out", default="stream_curve.png")
    args = parser.parse_args()
    torch.set_num_threads(1)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.3))
    results = {}
    for spec in args.model:
        name, checkpoint = spec.split("=", 1)
        rows = results[name] = curve(checkpoint, args.keywords, args.free)
        print(f"\n{name} ({checkpoint})\n{'threshold':>9} {'found':>7} {'wrong':>6} {'FA/h (keyword stream)':>22} "
              f"{'FA/h (keyword-free)':>20} {'latency':>8}")
        for r in rows:
            print(f"{r['threshold']:9.2f} {r['found_rate']:7.1%} {r['wrong_word']:6d} "
                  f"{r['false_alarms_per_hour_keyword_stream']:22.1f} {r['false_alarms_per_hour_free']:20.1f} "
                  f"{(r['latency_median_s'] or 0) * 1000:6.0f}ms")
        ax.plot([r["false_alarms_per_hour_free"] for r in rows], [1 - r["found_rate"] for r in rows], "o-",
                label=name, markersize=3)
    ax.axvline(5, color="grey", linestyle=":", lw=0.8)
    ax.axhline(0.10, color="grey", linestyle=":", lw=0.8, label="target: 90% found at 5 FA/h")
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlim(left=0)
    ax.set_xlabel(f"false alarms per hour, keyword-free stream ({Path(args.free).name})")
    ax.set_ylabel(f"keywords missed ({Path(args.keywords).name})")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    Path(args.out).with_suffix(".json").write_text(json.dumps(results, indent=1))
    print(f"\n{args.out}")


if __name__ == "__main__":
    main()
