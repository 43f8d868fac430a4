"""SpotterStream: audio blocks (data/sources.py) fed to a StreamingSpotter with its state carried, so that any
chunking gives the posteriors of the whole recording read at once."""
from __future__ import annotations

import numpy as np

from .decision import step_end_seconds


class SpotterStream:
    """A StreamingSpotter fed chunk by chunk: samples wait until a whole frame (n_fft) has arrived, frames
    until a whole encoder step (frame_stack) has, and the encoder state is carried. Chunk sizes do not change
    the posteriors (tests/speech/listening/test_stream.py)."""

    def __init__(self, model):
        import torch

        self.model = model.eval()
        fe = model.frontend
        self.samples = torch.zeros(0)
        self.frames = torch.zeros(0, fe.bands)
        self.state = None
        self.steps = 0  # encoder steps made so far

    def push(self, chunk):
        """16 kHz mono samples -> the posteriors (steps, classes) of the encoder steps they complete."""
        import torch

        with torch.inference_mode():
            return self._push(torch, chunk)

    def _push(self, torch, chunk):
        fe, k = self.model.frontend, self.model.frontend.cfg.frame_stack
        buffer = torch.cat([self.samples, torch.as_tensor(chunk, dtype=torch.float32).flatten()])
        n = (len(buffer) - fe.n_fft) // fe.hop + 1 if len(buffer) >= fe.n_fft else 0
        frames = self.frames
        if n > 0:
            new = fe.normalise(fe.raw_features(buffer[None, : (n - 1) * fe.hop + fe.n_fft]))[0]
            frames = torch.cat([frames, new])
        self.samples = buffer[n * fe.hop:]
        usable = len(frames) // k * k
        self.frames = frames[usable:]
        if not usable:
            return torch.zeros(0, self.model.cfg.classes)
        logits, self.state = self.model.classify(frames[:usable].reshape(1, usable // k, -1), self.state)
        self.steps += usable // k
        return torch.softmax(logits[0].float(), dim=-1)

    def times(self, count: int):
        """The stream times (s) of the last `count` steps made."""
        import torch

        return torch.from_numpy(step_times(self.model, np.arange(self.steps - count, self.steps)))


def posteriors(model, wave) -> tuple[np.ndarray, np.ndarray]:
    """(step end times (s), posteriors (steps, classes)) of a streaming model over one recording read at once
    (what SpotterStream gives for any chunking)."""
    import torch

    with torch.inference_mode():
        return _posteriors(torch, model, wave)


def _posteriors(torch, model, wave) -> tuple[np.ndarray, np.ndarray]:
    model.eval()
    device = next(model.parameters()).device
    probs = torch.softmax(model(wave.float()[None].to(device))[0].float(), dim=-1).cpu().numpy()
    return step_times(model, np.arange(len(probs))), probs


def step_times(model, steps: np.ndarray) -> np.ndarray:
    """When each encoder step's audio has all arrived: the time its detection gets."""
    fe = model.frontend
    return step_end_seconds(steps, fe.cfg.frame_stack, fe.hop, fe.n_fft)
