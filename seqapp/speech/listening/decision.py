"""The decision layer: per-step posteriors -> one detection per spoken keyword, with its time. After
TensorFlow's RecognizeCommands (speech_commands/recognize_commands.py): average the posteriors over a
window, fire when a keyword's average passes a threshold, then stay quiet for a suppression time."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from ..data.keywords import SILENCE, UNKNOWN


@dataclass
class DecisionConfig:
    average_ms: float = 500.0     # posteriors averaged over this window
    threshold: float = 0.7        # a keyword's average must reach this
    suppression_ms: float = 1500.0  # no other detection this long after one
    min_count: int = 3            # at least this many steps in the window before any decision
    thresholds: dict | None = None  # per keyword, from calibration (calibrate.py); others use `threshold`
    trigger: float | None = None  # two stages: the averaged posterior that asks the verifier (spotter.py)
    recheck_ms: float = 100.0     # two stages: at most one verification this often while a trigger lasts


@dataclass
class Detection:
    label: str
    time: float    # seconds from the start of the stream, when the decision could be made
    score: float

    def as_dict(self) -> dict:
        return {"label": self.label, "time": round(self.time, 3), "score": round(self.score, 4)}


def step_end_seconds(steps, frame_stack: int, hop: int, n_fft: int, rate: int = 16_000) -> np.ndarray:
    """A detection's time: when the audio that encoder step j depends on has all arrived (its last frame's last
    sample), in seconds. float64: the decision layer compares times."""
    last_frame = (np.asarray(steps, dtype=np.float64) + 1) * frame_stack - 1
    return (last_frame * hop + n_fft) / rate


class DecisionLayer:
    """Online: feed each step's time and posteriors; get a Detection or None."""

    def __init__(self, labels: list[str], cfg: DecisionConfig, step_seconds: float, verify=None):
        """`verify(time, class index) -> probability`, when given, is the second stage: asked when a keyword's
        average reaches cfg.trigger; the detection's score is the geometric mean of the two."""
        self.labels, self.cfg, self.verify = labels, cfg, verify
        self.thresholds = threshold_vector(labels, cfg)
        self.triggers = self.thresholds if verify is None else threshold_vector(labels, DecisionConfig(threshold=cfg.trigger))
        self.last_check = -np.inf
        self.window = deque(maxlen=max(1, round(cfg.average_ms / 1000 / step_seconds)))
        self.total = np.zeros(len(labels), dtype=np.float64)
        self.last_time = -np.inf

    def update(self, time: float, probs: np.ndarray) -> Detection | None:
        probs = np.asarray(probs, dtype=np.float64)
        if len(self.window) == self.window.maxlen:
            self.total -= self.window[0]
        self.window.append(probs)
        self.total += probs
        if len(self.window) < self.cfg.min_count:
            return None
        return self.decide(time, self.total / len(self.window))

    def decide(self, time: float, average: np.ndarray) -> Detection | None:
        margin = average - self.triggers  # -inf for _silence_ and _unknown_
        best = int(margin.argmax())
        # a microsecond's slack: a detection exactly the suppression time after the last is allowed, whatever
        # the rounding of the two times
        if margin[best] < 0 or time - self.last_time < self.cfg.suppression_ms / 1000 - 1e-6:
            return None
        score = float(average[best])
        if self.verify is not None:
            # the verifier's probability is at most 1, so below threshold² the geometric mean cannot pass:
            # asking would be wasted work (most of a trigger episode's rise and fall)
            if score < self.thresholds[best] ** 2 or time - self.last_check < self.cfg.recheck_ms / 1000 - 1e-6:
                return None
            self.last_check = time
            score = float(np.sqrt(score * self.verify(time, best)))
            if score < self.thresholds[best]:
                return None
        self.last_time = time
        return Detection(self.labels[best], float(time), score)


def threshold_vector(labels: list[str], cfg: DecisionConfig) -> np.ndarray:
    """Each class's threshold: a keyword's own (calibrated) or the common one; inf for the other classes."""
    own = cfg.thresholds or {}
    return np.array([np.inf if name in (SILENCE, UNKNOWN) else own.get(name, cfg.threshold) for name in labels])


def smoothed(probs: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """The running average of the last `window` rows at every step, and how many rows it averaged."""
    cums = np.concatenate([np.zeros((1, probs.shape[1])), np.cumsum(probs, axis=0, dtype=np.float64)])
    ends = np.arange(1, len(probs) + 1)
    starts = np.maximum(0, ends - window)
    return (cums[ends] - cums[starts]) / (ends - starts)[:, None], ends - starts


def detect(times: np.ndarray, probs: np.ndarray, labels: list[str], cfg: DecisionConfig,
           step_seconds: float, verify=None) -> list[Detection]:
    """The DecisionLayer over a whole recording's posteriors at once (the same detections, faster: a threshold
    sweep re-runs only the steps where some keyword's average passes the threshold or trigger)."""
    layer = DecisionLayer(labels, cfg, step_seconds, verify)
    average, counts = smoothed(probs, layer.window.maxlen)
    candidates = (counts >= cfg.min_count) & ((average - layer.triggers).max(axis=1) >= 0)
    found = []
    for i in np.flatnonzero(candidates):
        detection = layer.decide(float(times[i]), average[i])
        if detection is not None:
            found.append(detection)
    return found
