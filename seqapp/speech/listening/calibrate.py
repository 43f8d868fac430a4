"""An operating point in false alarms per hour: per-keyword thresholds chosen on validation streams, and the
curve of them stored in the checkpoint (`--false-alarms-per-hour`).

The evidence is a score per step and keyword (the decision layer's averaged posterior, or the two-stage
score): for each spoken keyword, the best score its own keyword reached while it could be found (0.5 s before
it starts to 0.75 s after it ends, as scoring counts it); for each keyword, the peak of every episode of
its score outside all such windows and the suppression time after each, which a detection there keeps
quiet (an episode: steps at or above a floor, merged while closer than the suppression time), each a false alarm at any threshold below the peak. Given an hourly rate, the budget of
false alarms on these hours is shared out greedily: each step lowers the threshold of the keyword that
gains most keywords found per false alarm it adds; what is left once nothing more is found lowers the
strictest thresholds, so the point is as sensitive as its budget allows."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .scoring import AFTER_S, BEFORE_S

TARGETS = (0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0)
FLOOR = 0.05    # scores below this are never a detection
ABOVE = 1e-4    # a threshold sits this far above the peak it must not fire on


@dataclass
class Evidence:
    keywords: list[str]
    positives: list[list[float]] = field(default_factory=list)  # per keyword: each spoken one's best score
    negatives: list[list[float]] = field(default_factory=list)  # per keyword: each false episode's peak
    seconds: float = 0.0   # audio outside the keyword windows

    def __post_init__(self):
        self.positives = self.positives or [[] for _ in self.keywords]
        self.negatives = self.negatives or [[] for _ in self.keywords]

    @property
    def spoken(self) -> int:
        return sum(len(p) for p in self.positives)


def episode_peaks(times: np.ndarray, scores: np.ndarray, suppression_s: float, floor: float = FLOOR) -> list[float]:
    peaks, last_time = [], -np.inf
    for t, s in zip(times[scores >= floor], scores[scores >= floor]):
        if t - last_time > suppression_s:
            peaks.append(float(s))
        else:
            peaks[-1] = max(peaks[-1], float(s))
        last_time = t
    return peaks


def add_stream(evidence: Evidence, times: np.ndarray, scores: np.ndarray, truth, suppression_s: float = 1.5) -> None:
    """Add one stream: `scores` (steps, keywords) in evidence.keywords' order; truth rows (word, start s, end s)."""
    spoken = [(w, s, e) for w, s, e in truth if w in evidence.keywords]
    near = np.zeros(len(times), dtype=bool)
    for word, start, end in spoken:
        window = (times >= start - BEFORE_S) & (times <= end + AFTER_S)
        near |= (times >= start - BEFORE_S) & (times <= end + AFTER_S + suppression_s)  # a detection there silences it
        k = evidence.keywords.index(word)
        evidence.positives[k].append(float(scores[window, k].max()) if window.any() else 0.0)
    for k in range(len(evidence.keywords)):
        evidence.negatives[k] += episode_peaks(times[~near], scores[~near, k], suppression_s)
    step = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    evidence.seconds += step * int((~near).sum())


def levels(negatives: list[float]) -> np.ndarray:
    """The threshold that allows j false alarms, for j = 0 .. len(negatives)."""
    peaks = np.sort(np.asarray(negatives, dtype=np.float64))[::-1]
    return np.append(peaks + ABOVE, FLOOR)


def thresholds_for(evidence: Evidence, allowed: int) -> tuple[np.ndarray, int, int]:
    """(per-keyword thresholds, keywords found, false alarms) for at most `allowed` false alarms in all."""
    steps = [levels(n) for n in evidence.negatives]
    pos = [np.asarray(p, dtype=np.float64) for p in evidence.positives]
    found_at = [np.array([(p >= t).sum() for t in s]) for p, s in zip(pos, steps)]
    level = [0] * len(steps)
    budget = allowed
    while budget > 0:
        best = None  # (found per false alarm, keyword, how many more false alarms)
        for k, counts in enumerate(found_at):
            for m in range(1, min(budget, len(counts) - 1 - level[k]) + 1):
                gain = (counts[level[k] + m] - counts[level[k]]) / m
                if gain > 0 and (best is None or gain > best[0]):
                    best = (gain, k, m)
        if best is None:
            break
        _, k, m = best
        level[k] += m
        budget -= m
    while budget > 0:  # found all it can: spend the rest on sensitivity, strictest keyword first
        open_ = [k for k in range(len(steps)) if level[k] < len(steps[k]) - 1]
        if not open_:
            break
        k = max(open_, key=lambda k: steps[k][level[k]])
        level[k] += 1
        budget -= 1
    thresholds = np.array([min(1.0 + ABOVE, s[j]) for s, j in zip(steps, level)])
    found = int(sum(c[j] for c, j in zip(found_at, level)))
    return thresholds, found, int(sum(level))


def calibrate(evidence: Evidence, targets=TARGETS) -> dict:
    """The operating curve: for each rate, the thresholds, and what they give on the validation streams."""
    hours = evidence.seconds / 3600
    points = []
    for rate in targets:
        thresholds, found, false_alarms = thresholds_for(evidence, int(np.floor(rate * hours + 1e-9)))
        points.append({"false_alarms_per_hour": rate,
                       "thresholds": {k: round(float(t), 5) for k, t in zip(evidence.keywords, thresholds)},
                       "found_rate": found / evidence.spoken if evidence.spoken else 0.0,
                       "validation_false_alarms": false_alarms})
    return {"hours": hours, "keywords_spoken": evidence.spoken, "points": points}


def operating_point(calibration: dict, rate: float) -> dict:
    """The calibrated point for a requested rate: the highest one at or below it (the strictest when the
    request is below them all)."""
    points = sorted(calibration["points"], key=lambda p: p["false_alarms_per_hour"])
    below = [p for p in points if p["false_alarms_per_hour"] <= rate + 1e-9]
    return below[-1] if below else points[0]
