"""The listening spotter as users run it: a streaming checkpoint (optionally bundled with a clip verifier and a
calibrated operating curve) loaded once, then fed blocks of audio. One place for `spot --stream`, `listen`,
`evaluate --stream`, the benchmarks and the server.

Two stages: the streaming model's averaged posterior crossing a low trigger threshold asks the verifier, a
bidirectional clip model, to score the last second of audio (two windows, ending at the trigger and 0.2 s
before it); the detection's score is the geometric mean of the two, held to the keyword's threshold. The
verifier runs only on triggers (at most every 0.1 s while one lasts, and only where the streaming average is
at least the threshold squared: below it the geometric mean cannot pass), so the work per second of audio stays
nearly that of the streaming model alone."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ... import checkpoint
from ...errors import UserError
from ..data.audio import SAMPLE_RATE
from .calibrate import Evidence, add_stream, operating_point
from .decision import DecisionConfig, DecisionLayer, detect, smoothed
from ..models.spotters import StreamingSpotter
from .runtime import HISTORY_S, AudioHistory, verify_windows
from .stream import SpotterStream, posteriors

VERIFY_ENDS_S = (0.0, 0.2)   # the verifier's 1 s windows end this long before the trigger


@dataclass
class Spotter:
    model: StreamingSpotter
    names: list[str]
    decision: DecisionConfig
    verifier: torch.nn.Module | None = None
    verifier_names: list[str] = field(default_factory=list)
    note: str = ""           # how the operating point was chosen, for people

    @torch.inference_mode()
    def verify_scores(self, audio: np.ndarray, end_samples: list[int]) -> np.ndarray:
        """The verifier's probabilities (windows, classes in self.names' order) for 1 s windows ending at each
        sample index of `audio` (zero-padded before its start)."""
        windows = verify_windows(audio, end_samples, VERIFY_ENDS_S, SAMPLE_RATE)
        probs = torch.softmax(self.verifier(torch.from_numpy(windows)).float(), dim=-1).numpy()
        order = [self.verifier_names.index(n) if n in self.verifier_names else None for n in self.names]
        mapped = np.stack([probs[:, j] if j is not None else np.zeros(len(probs)) for j in order], axis=1)
        return mapped.reshape(len(end_samples), len(VERIFY_ENDS_S), -1).max(axis=1)

    def verify_in(self, history: AudioHistory, memo: dict | None = None):
        """A verify(time, class) callable over the audio `history` holds when it is called (None: one stage);
        with `memo`, answers are kept there by time (a threshold sweep over one recording asks again)."""
        if self.verifier is None:
            return None

        def verify(time: float, label: int) -> float:
            end = int(round(time * SAMPLE_RATE))
            if memo is None or end not in memo:
                scores = self.verify_scores(history.audio, [end - history.offset])[0]
                if memo is None:
                    return float(scores[label])
                memo[end] = scores
            return float(memo[end][label])
        return verify


def load_spotter(path, threshold: float | None = None, average_ms: float | None = None,
                 false_alarms_per_hour: float | None = None) -> Spotter:
    """A streaming checkpoint or bundle file, on the CPU (see spotter_from_checkpoint)."""
    return spotter_from_checkpoint(checkpoint.load(path, task="kws"), path, threshold, average_ms,
                                   false_alarms_per_hour)


def spotter_from_checkpoint(ckpt: dict, path="checkpoint", threshold: float | None = None,
                            average_ms: float | None = None, false_alarms_per_hour: float | None = None) -> Spotter:
    """One line for a clip model or an impossible setting. The operating point: --threshold (one for every
    keyword) or --false-alarms-per-hour (the calibrated per-keyword thresholds), else the calibrated point
    the checkpoint was selected at, else its threshold."""
    from ..settings import KWSConfig, model_from_checkpoint

    model, names = model_from_checkpoint(ckpt)
    if not isinstance(model, StreamingSpotter):
        raise UserError(f"{path} is a clip model (bidirectional, pooled over a whole clip): streaming "
                        "needs one trained with --streaming (configs/kws_stream.json)")
    if threshold is not None and false_alarms_per_hour is not None:
        raise UserError("give --threshold or --false-alarms-per-hour, not both")
    cfg = KWSConfig.from_dict(ckpt["task_state"]["config"])
    decision = DecisionConfig(threshold=cfg.threshold if threshold is None else threshold)
    if average_ms is not None:
        decision.average_ms = average_ms
    if not 0 < decision.threshold <= 1:
        raise UserError(f"--threshold must be in (0, 1], got {decision.threshold}")
    if not 0 < decision.average_ms <= 10_000:
        raise UserError(f"--average-ms must be in (0, 10000], got {decision.average_ms}")
    spotter = Spotter(model, names, decision)
    bundle = ckpt.get("verifier")
    if bundle:
        spotter.verifier, spotter.verifier_names = model_from_checkpoint(bundle)
        spotter.decision.trigger = float(ckpt.get("trigger", 0.3))
    calibration = ckpt["task_state"].get("calibration") if not bundle else ckpt.get("calibration")
    if false_alarms_per_hour is not None and false_alarms_per_hour <= 0:
        raise UserError(f"--false-alarms-per-hour must be > 0, got {false_alarms_per_hour}")
    if false_alarms_per_hour is not None and not calibration:
        raise UserError(f"{path} has no calibration curve: use --threshold")
    if threshold is None and calibration:
        rate = cfg.select_fa_per_hour if false_alarms_per_hour is None else false_alarms_per_hour
        point = operating_point(calibration, rate)
        spotter.decision.thresholds = dict(point["thresholds"])
        spotter.note = (f"operating point: {point['false_alarms_per_hour']:g} false alarms/hour (thresholds "
                        f"calibrated on {calibration['hours']:.2f} h of validation audio)")
    return spotter


def run_stream(spotter: Spotter, blocks, on_detection=None, decide: bool = True, on_posteriors=None):
    """Feed blocks through the model and (with `decide`) the decision layer and verifier, as a live stream
    runs; `on_posteriors(times, probs)` sees each block's posteriors as they come (a live plot). Returns
    (times, posteriors, detections)."""
    model, names = spotter.model, spotter.names
    stream = SpotterStream(model)
    history = AudioHistory(keep=int(HISTORY_S * SAMPLE_RATE))
    layer = DecisionLayer(names, spotter.decision, model.step_seconds, spotter.verify_in(history))
    times, probs, detections = [], [], []
    for block in blocks:
        block = np.asarray(block, dtype=np.float32).reshape(-1)
        if spotter.verifier is not None:
            history.add(block)
        p = stream.push(block)
        if not len(p):
            continue
        t = stream.times(len(p)).numpy()
        p = p.numpy()
        for ti, pi in zip(t, p) if decide else ():
            found = layer.update(float(ti), pi)
            if found is not None:
                detections.append(found)
                if on_detection:
                    on_detection(found)
        times.append(t)
        probs.append(p.astype(np.float32))
        if on_posteriors:
            on_posteriors(t, probs[-1])
    if not times:
        return np.zeros(0), np.zeros((0, len(names)), np.float32), detections
    return np.concatenate(times), np.concatenate(probs), detections


def detections_in(spotter: Spotter, times: np.ndarray, probs: np.ndarray, audio: np.ndarray | None = None,
                  memo: dict | None = None, **changes):
    """The detections of a whole recording's posteriors (DecisionConfig fields may be changed, e.g. a
    threshold for a sweep); with a verifier, `audio` is the recording, and `memo` (a dict kept for the
    recording) saves asking the verifier again at the same moment."""
    cfg = replace(spotter.decision, **changes) if changes else spotter.decision
    if spotter.verifier is not None and audio is None:
        raise ValueError("a two-stage spotter needs the recording's audio to decide")
    verify = spotter.verify_in(AudioHistory(np.asarray(audio, np.float32)), memo) if audio is not None else None
    return detect(times, probs, spotter.names, cfg, spotter.model.step_seconds, verify)


def keyword_columns(names: list[str]) -> list[int]:
    return [i for i, n in enumerate(names) if not n.startswith("_")]


def stream_scores(spotter: Spotter, wave: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(step times, the score of each keyword at each step) over a recording, for calibration: the averaged
    posterior, or with a verifier the two-stage score wherever the verifier could be asked (every trigger step,
    at most every recheck_ms; 0 elsewhere). Online, steps below a keyword's threshold squared are not asked,
    so the recheck times can differ slightly from these for a threshold above the trigger's square root."""
    cfg, columns = spotter.decision, keyword_columns(spotter.names)
    times, probs = posteriors(spotter.model, wave)
    average, counts = smoothed(probs, max(1, round(cfg.average_ms / 1000 / spotter.model.step_seconds)))
    average = np.where(counts[:, None] >= cfg.min_count, average[:, columns], 0.0)
    if spotter.verifier is None:
        return times, average
    checks, last = [], -np.inf
    for i in np.flatnonzero(average.max(axis=1) >= cfg.trigger):
        if times[i] - last >= cfg.recheck_ms / 1000 - 1e-6:
            checks.append(i)
            last = times[i]
    scores = np.zeros_like(average)
    audio = wave.numpy()
    for batch in range(0, len(checks), 64):
        steps = checks[batch: batch + 64]
        verified = spotter.verify_scores(audio, [int(round(times[i] * SAMPLE_RATE)) for i in steps])[:, columns]
        for i, v in zip(steps, verified):
            k = int(average[i].argmax())
            scores[i, k] = np.sqrt(average[i, k] * v[k])
    return times, scores


def evidence(spotter: Spotter, streams) -> Evidence:
    """Calibration evidence from labelled streams [(wave, truth rows (word, start s, end s))]."""
    found = Evidence([spotter.names[i] for i in keyword_columns(spotter.names)])
    for wave, truth in streams:
        times, scores = stream_scores(spotter, wave)
        add_stream(found, times, scores, truth, spotter.decision.suppression_ms / 1000)
    return found
