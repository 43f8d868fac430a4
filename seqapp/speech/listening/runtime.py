"""The listening spotter without PyTorch: a spotter exported by `seqapp export` (or the one that ships inside
seqapp) run by onnxruntime, block by block, through seqapp's decision layer. `seqapp spot --stream` and
`seqapp listen` run it for a .onnx file and when no checkpoint is given: a long-running listener then holds
onnxruntime and numpy, not PyTorch (tests/speech/listening/test_runtime.py: the same detections as the checkpoint)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from ...errors import UserError
from ...onnx_export import metadata, session
from .decision import DecisionConfig, DecisionLayer, Detection, step_end_seconds

BUNDLED = Path(__file__).parents[1] / "models" / "listening.onnx"  # make bundled-spotter writes it
FORMAT = 2                    # the format exports write (2: the embedding's state carried between calls,
READS = (1, 2)                # lead_samples and warmup_calls); a seqapp refuses the formats it does not read
HISTORY_S = 2.0               # audio kept for the verifier (its windows reach 1.2 s back)


def verify_windows(audio: np.ndarray, end_samples: list[int], ends_s, rate: int) -> np.ndarray:
    """The verifier's 1 s windows: for each sample index of `audio`, one ending `back` seconds before it for each
    back in ends_s (zero-padded before the audio's start), (len(end_samples) * len(ends_s), rate)."""
    windows = np.zeros((len(end_samples) * len(ends_s), rate), np.float32)
    for i, (end, back) in enumerate((e, b) for e in end_samples for b in ends_s):
        stop = end - int(back * rate)
        piece = audio[max(0, stop - rate): max(0, stop)]
        windows[i, rate - len(piece):] = piece
    return windows


@dataclass
class AudioHistory:
    """The last `keep` samples of a stream, and the block just added (all of it when keep is 0); audio[0] is
    stream sample `offset`. The verifier's windows are cut from it."""
    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    offset: int = 0
    keep: int = 0

    def add(self, block: np.ndarray) -> None:
        total = self.offset + len(self.audio) + len(block)
        self.audio = np.concatenate([self.audio, block])
        if self.keep and len(self.audio) > self.keep + len(block):
            self.audio = self.audio[-(self.keep + len(block)):]
        self.offset = total - len(self.audio)


def shared_weights_path(spotter: Path) -> Path:
    """Where a two-stage spotter's graphs find the weights they share (the speech embedding): `NAME.weights`."""
    return spotter.with_name(spotter.stem + ".weights")


def is_exported(path) -> bool:
    return path is None or str(path).endswith(".onnx")


class OnnxSpotter:
    """An exported streaming graph (samples and state in, posteriors and state out), its verifier graph when it
    has one, and the decision layer at the operating point stored in its metadata (or `threshold`)."""

    def __init__(self, path=None, threshold: float | None = None, average_ms: float | None = None):
        path = Path(path) if path is not None else BUNDLED
        if not path.is_file():
            raise UserError(f"{path}: no such spotter" + (" (this install has no bundled spotter: pass --checkpoint, "
                                                          "or build it with make bundled-spotter)"
                                                          if path == BUNDLED else ""))
        self.sess, self.meta = self._open(path, path)
        meta = self.meta
        if meta.get("graph") != "stream_chunk":
            raise UserError(f"{path} is not a streaming spotter (export one trained with --streaming)")
        if meta.get("format", FORMAT) not in READS:
            raise UserError(f"{path} is a spotter of format {meta['format']}; this seqapp reads formats "
                            f"{', '.join(map(str, READS))}: "
                            "rebuild it (make bundled-spotter) or upgrade seqapp")
        self.path, self.names = path, list(meta["labels"])
        self.decision = DecisionConfig(**meta["decision"])
        if threshold is not None:
            if not 0 < threshold <= 1:
                raise UserError(f"--threshold must be in (0, 1], got {threshold}")
            self.decision.threshold, self.decision.thresholds = threshold, None
        if average_ms is not None:
            if not 0 < average_ms <= 10_000:
                raise UserError(f"--average-ms must be in (0, 10000], got {average_ms}")
            self.decision.average_ms = average_ms
        self.verifier = None
        if meta.get("verifier"):
            verifier_path = path.with_name(meta["verifier"])
            if not verifier_path.is_file():
                raise UserError(f"{path} is a two-stage spotter: its verifier {verifier_path} is missing")
            self.verifier, verifier_meta = self._open(verifier_path, path)
            clip_names = verifier_meta["labels"]
            self.verifier_columns = [clip_names.index(n) if n in clip_names else None for n in self.names]
        self.note = ("operating point: the thresholds it was exported with" if self.decision.thresholds
                     else f"threshold {self.decision.threshold:g}")

    @staticmethod
    def _open(path: Path, spotter: Path):
        try:
            sess = session(path)
            return sess, metadata(sess)
        except Exception as e:  # noqa: BLE001  (onnxruntime's errors for a bad file are many and unnamed)
            shared = shared_weights_path(spotter)
            # a graph names the file its external data is in (seqapp's two-stage graphs are a few MB: read no more)
            if path.is_file() and path.stat().st_size < 1 << 26 and shared.name.encode() in path.read_bytes():
                raise UserError(f"{path} reads weights from {shared}, which is missing or damaged: export the "
                                "spotter again") from None
            raise UserError(f"{path} is not a model seqapp exported ({str(e).splitlines()[0][:160]})") from None

    def run(self, blocks: Iterable[np.ndarray], on_detection=None, on_posteriors=None) -> list[Detection]:
        """Feed 16 kHz mono blocks of any size; the detections, each also handed to `on_detection` as it
        happens; `on_posteriors(times, probs)` sees each chunk's posteriors (a live plot)."""
        # each run keeps its own audio (a server runs one spotter for many listeners), and only for a verifier
        heard = None if self.verifier is None else AudioHistory(keep=int(HISTORY_S * self.meta["sample_rate"]))
        verify = None if heard is None else (lambda time, label: self._verify(heard, time, label))
        layer = DecisionLayer(self.names, self.decision, self.meta["step_seconds"], verify)
        found = []
        for times, probs in self.posteriors(blocks, heard):
            if on_posteriors:
                on_posteriors(times, probs)
            for time, p in zip(times, probs):
                detection = layer.update(float(time), p)
                if detection is not None:
                    found.append(detection)
                    if on_detection:
                        on_detection(detection)
        return found

    def posteriors(self, blocks: Iterable[np.ndarray], heard: AudioHistory | None = None):
        """(step end times in seconds, posteriors) of each call of the streaming graph, as 16 kHz mono blocks
        arrive (each also handed to `heard` first)."""
        meta, rate = self.meta, self.meta["sample_rate"]
        shapes = meta.get("state_shapes") or [[meta["layers"], 1, meta["hidden"]]] * (len(meta["inputs"]) - 1)
        state = {name: np.zeros(shape, np.float32) for name, shape in zip(meta["inputs"][1:], shapes)}
        read, advance, k, hop = meta["chunk_samples"], meta["advance_samples"], meta["frame_stack"], meta["hop"]
        buffer, length = np.zeros(meta.get("lead_samples", 0), np.float32), 0  # zeros before the stream
        warmup, steps = meta.get("warmup_calls", 0), 0  # steps: those handed on

        def step(chunk: np.ndarray, keep: int | None = None):
            """One call of the graph: the times and posteriors of its first `keep` steps (none while warming up)."""
            nonlocal state, steps, warmup
            probs, *new = self.sess.run(None, {"samples": chunk[None], **state})
            state = dict(zip(meta["inputs"][1:], new))
            if warmup:  # the warm-up calls fill the ear: the head starts afresh after them
                warmup -= 1
                state = state if warmup else {n: s if n == "ear" else np.zeros_like(s) for n, s in state.items()}
                return None
            probs = probs[0][:keep]
            times = step_end_seconds(steps + np.arange(len(probs)), k, hop, meta["n_fft"], rate)
            steps += len(times)
            return times, probs

        for block in blocks:
            block = np.asarray(block, np.float32).reshape(-1)
            buffer, length = np.concatenate([buffer, block]), length + len(block)
            if heard is not None:
                heard.add(block)
            while len(buffer) >= read:
                if (result := step(buffer[:read])) is not None:
                    yield result
                buffer = buffer[advance:]
        # the stream's end: the steps the last partial chunk completes, as PyTorch reads them (zeros after them)
        left = (((length - meta["n_fft"]) // hop + 1) // k if length >= meta["n_fft"] else 0) - steps
        if left > 0:  # then the warm-up is over: it ends before the first step's audio does
            yield step(np.pad(buffer, (0, read - len(buffer))), keep=left)

    def _verify(self, heard: AudioHistory, time: float, label: int) -> float:
        """The verifier's best probability of `label` over 1 s windows ending at the trigger and before it."""
        column, rate = self.verifier_columns[label], self.meta["sample_rate"]
        if column is None:
            return 0.0
        windows = verify_windows(heard.audio, [int(round(time * rate)) - heard.offset], self.meta["verify_ends_s"],
                                 rate)
        logits = self.verifier.run(None, {"wave": windows})[0].astype(np.float64)
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        return float((probs / probs.sum(axis=1, keepdims=True))[:, column].max())
