"""Scoring detections in a labelled stream, as TensorFlow's test_streaming_accuracy does: a detection of the
right word from 0.5 s before the word starts to 0.75 s after it ends finds it; a detection there of another
keyword is a wrong word; any other detection is a false alarm (other words and noise alike)."""
from __future__ import annotations

import numpy as np

from ..data.dataset import KEYWORDS
from .decision import Detection

BEFORE_S, AFTER_S = 0.5, 0.75


def score_detections(detections: list[Detection], truth: list[tuple[str, float, float]], seconds: float,
                     keywords=KEYWORDS) -> dict:
    spoken = [(word, start, end) for word, start, end in truth if word in keywords]
    claimed = [False] * len(spoken)
    found = wrong = false_alarms = 0
    latencies, fired = [], {}
    for d in sorted(detections, key=lambda d: d.time):
        near = [i for i, (_, start, end) in enumerate(spoken)
                if not claimed[i] and start - BEFORE_S <= d.time <= end + AFTER_S]
        right = [i for i in near if spoken[i][0] == d.label]
        if right:
            claimed[right[0]] = True
            found += 1
            latencies.append(d.time - spoken[right[0]][2])
        elif near:
            claimed[near[0]] = True
            wrong += 1
        else:
            false_alarms += 1
            fired[d.label] = fired.get(d.label, 0) + 1
    hours = seconds / 3600
    return {  # None where a figure has nothing to count (a stream without keywords has no found rate)
        "keywords": len(spoken), "found": found, "found_rate": found / len(spoken) if spoken else None,
        "wrong_word": wrong, "false_alarms": false_alarms, "false_alarm_words": fired,
        "false_alarms_per_hour": false_alarms / hours if hours else None,
        "latency_median_s": float(np.median(latencies)) if latencies else None,
        "latency_p90_s": float(np.percentile(latencies, 90)) if latencies else None,
        "seconds": seconds,
    }


def plot_sweep(rows: list[dict], png, title: str = "") -> None:
    """Miss rate against false alarms per hour, one point per threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    rows = [r for r in rows if r["found_rate"] is not None and r["false_alarms_per_hour"] is not None]
    fa = [r["false_alarms_per_hour"] for r in rows]
    miss = [1 - r["found_rate"] for r in rows]
    ax.plot(fa, miss, "o-")
    for r, x, y in zip(rows, fa, miss):
        ax.annotate(f"{r['threshold']:.2f}", (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("false alarms per hour")
    ax.set_ylabel("miss rate (keywords not found)")
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
