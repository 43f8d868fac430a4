"""`evaluate kws --stream`: a streaming spotter run over a labelled recording, scored at its operating point and
at a sweep of thresholds, with the sweep drawn."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import UserError
from ..data.sources import open_source
from ..data.streams import read_labels
from .scoring import plot_sweep, score_detections
from .spotter import detections_in, load_spotter, run_stream

SWEEP = (0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.98)


def evaluate_stream(checkpoint_path: str, stream: str, labels: str | None, threshold: float | None = None,
                    average_ms: float | None = None, false_alarms_per_hour: float | None = None,
                    out: str | None = None) -> tuple[dict, str, float]:
    """The result (found, false alarms, latency, the sweep), the operating point in words, the seconds heard."""
    import torch

    if not labels:
        raise UserError("--stream needs --labels CSV (word,start_ms,end_ms rows, as make-stream writes)")
    truth = read_labels(labels)
    torch.set_num_threads(1)
    spotter = load_spotter(checkpoint_path, threshold, average_ms, false_alarms_per_hour)
    kept = []  # a two-stage spotter's verifier reads the audio again at each threshold of the sweep

    def blocks():
        for block in open_source(stream):
            if spotter.verifier is not None:
                kept.append((np.clip(block, -1, 1) * 32767).astype(np.int16))
            yield block

    times, probs, _ = run_stream(spotter, blocks(), decide=False)  # detections_in() below, for the sweep too
    audio = np.concatenate(kept).astype(np.float32) / 32767 if kept else None
    seconds = float(times[-1]) if len(times) else 0.0
    keywords = [n for n in spotter.names if not n.startswith("_")]
    memo = {}
    result = score_detections(detections_in(spotter, times, probs, audio, memo), truth, seconds, keywords)
    sweep = [{"threshold": t, **score_detections(detections_in(spotter, times, probs, audio, memo, threshold=t,
                                                               thresholds=None), truth, seconds, keywords)}
             for t in SWEEP]
    folder = Path(out) if out else Path(stream).parent
    folder.mkdir(parents=True, exist_ok=True)
    png = folder / f"{Path(stream).stem}_sweep.png"
    plot_sweep(sweep, png, title=f"{Path(stream).name}: {seconds / 60:.1f} min")
    decision = spotter.decision
    result = {"stream": str(stream), "threshold": decision.threshold, "thresholds": decision.thresholds, "two_stage": spotter.verifier is not None,
              "average_ms": decision.average_ms, **result, "sweep": sweep, "sweep_png": str(png)}
    return result, spotter.note or f"threshold {decision.threshold}", seconds


def shown(value, spec: str) -> str:
    """A figure for people: "-" where there is nothing to count; "ms" formats seconds as milliseconds."""
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if spec == "ms" else format(value, spec)


def report_lines(result: dict, point: str, seconds: float) -> list[str]:
    """evaluate_stream's result for people: found, false alarms and latency at the operating point, then the sweep."""
    fired = ", ".join(f"{w} {n}" for w, n in sorted(result["false_alarm_words"].items(), key=lambda x: -x[1]))
    lines = [f"{result['stream']} ({seconds / 60:.1f} min, {point}{', two stages' if result['two_stage'] else ''}): "
             f"found {result['found']}/{result['keywords']} keywords ({shown(result['found_rate'], '.1%')}), "
             f"{result['wrong_word']} wrong words, {result['false_alarms']} false alarms "
             f"({shown(result['false_alarms_per_hour'], '.1f')}/hour{': ' + fired if fired else ''}); latency after "
             f"the word: median {shown(result['latency_median_s'], 'ms')}, 90th percentile "
             f"{shown(result['latency_p90_s'], 'ms')}",
             f"{'threshold':>9} {'found':>7} {'wrong':>6} {'FA/hour':>8} {'latency':>8}  (one threshold for every keyword)"]
    lines += [f"{r['threshold']:9.2f} {shown(r['found_rate'], '.1%'):>7} {r['wrong_word']:6d} "
              f"{shown(r['false_alarms_per_hour'], '.1f'):>8} {shown(r['latency_median_s'], 'ms'):>8}"
              for r in result["sweep"]]
    return lines + [f"miss rate against false alarms per hour: {result['sweep_png']}"]
