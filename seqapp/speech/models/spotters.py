"""The keyword spotter: front end -> RecurrentEncoder -> pooling -> classifier."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ...encoder import EncoderConfig, RecurrentEncoder
from ...errors import UserError
from ..data.audio import SAMPLE_RATE
from .features import FeatureConfig, FrontEnd

POOLINGS = ("last", "mean", "attention")


@dataclass
class KWSModelConfig:
    classes: int
    cell: str = "gru"
    layers: int = 2
    hidden: int = 128
    dropout: float = 0.1
    bidirectional: bool = True
    pooling: str = "attention"
    forget_bias: float = 0.0
    window: int = 0          # streaming: each step reads its last `window` vectors afresh (no carried encoder state)


class AttentionPooling(nn.Module):
    """A learned query scores every frame; the summary is the softmax-weighted sum of frames."""

    def __init__(self, size: int):
        super().__init__()
        self.score = nn.Sequential(nn.Linear(size, size), nn.Tanh(), nn.Linear(size, 1, bias=False))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None):
        scores = self.score(x).squeeze(-1)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores.float(), dim=-1).to(x.dtype)
        return torch.einsum("bt,btd->bd", weights, x), weights


def pool(cfg: KWSModelConfig, attention: AttentionPooling | None, out: torch.Tensor, state):
    """An encoder's outputs (batch, frames, size) summarised per sequence: (batch, size), attention weights or None."""
    if cfg.pooling == "mean":
        return out.mean(dim=1), None
    if cfg.pooling == "attention":
        return attention(out)
    h = state[0] if isinstance(state, tuple) else state        # (layers * directions, batch, hidden)
    directions = 2 if cfg.bidirectional else 1
    return torch.cat(list(h[-directions:]), dim=-1), None       # top layer, every direction


class SpotterParts(nn.Module):
    """What both spotters are made of: the front end, the shared encoder, attention pooling when `pooled` asks
    for it, dropout and the classifier."""

    def __init__(self, cfg: KWSModelConfig, features: FeatureConfig, pooled: bool):
        super().__init__()
        if cfg.pooling not in POOLINGS:
            raise UserError(f"unknown pooling {cfg.pooling!r} (choose last, mean or attention)")
        self.cfg = cfg
        self.frontend = FrontEnd(features)
        self.encoder = RecurrentEncoder(EncoderConfig(self.frontend.n_features, cfg.cell, cfg.layers, cfg.hidden,
                                                      cfg.dropout, cfg.bidirectional, cfg.forget_bias))
        size = self.encoder.output_size
        self.attention = AttentionPooling(size) if pooled and cfg.pooling == "attention" else None
        self.drop = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(size, cfg.classes)


class KeywordSpotter(SpotterParts):
    def __init__(self, cfg: KWSModelConfig, features: FeatureConfig):
        super().__init__(cfg, features, pooled=True)

    def pool(self, out: torch.Tensor, state) -> tuple[torch.Tensor, torch.Tensor | None]:
        return pool(self.cfg, self.attention, out, state)

    def forward(self, wave: torch.Tensor, return_weights: bool = False):
        """wave (batch, 16000) -> logits (batch, classes) [, attention weights (batch, frames)]."""
        out, state = self.encoder(self.frontend(wave))
        pooled, weights = self.pool(out, state)
        logits = self.classifier(self.drop(pooled))
        return (logits, weights) if return_weights else logits

    def clip_logits(self, wave: torch.Tensor) -> torch.Tensor:
        return self(wave)


class StreamingSpotter(SpotterParts):
    """Causal front end -> unidirectional RecurrentEncoder -> a posterior per encoder step. The state carries
    across calls, so a recording can be fed in chunks of any size (see stream.SpotterStream).

    With cfg.window, each step's posterior comes from the last `window` steps' features read afresh by the encoder
    (bidirectional if asked) and pooled, as openWakeWord's heads read the last 16 embedding vectors: a whole word is
    seen at once, and the carried state is those features, not the encoder's."""

    def __init__(self, cfg: KWSModelConfig, features: FeatureConfig):
        if cfg.bidirectional and not cfg.window:
            raise UserError("a streaming spotter reads forward in time only: it cannot be bidirectional "
                            "(unless it reads windows: --window)")
        if features.center or features.normalize != "fixed":
            raise UserError("a streaming spotter needs causal features (center off, fixed normalisation)")
        super().__init__(cfg, features, pooled=bool(cfg.window))

    @property
    def step_seconds(self) -> float:
        return self.frontend.hop * self.frontend.cfg.frame_stack / SAMPLE_RATE

    def classify(self, features: torch.Tensor, state=None, steps: torch.Tensor | None = None):
        """features (batch, steps, n_features) -> logits (batch, steps, classes), the state to carry. `steps`
        (batch, k), windows only: the logits of those steps alone (training reads a few steps of each sequence)."""
        if not self.cfg.window:
            out, state = self.encoder(features, state=state)
            return self.classifier(self.drop(out)), state
        batch, width = features.shape[0], self.cfg.window  # not len(): an export keeps the batch free
        past = features.new_zeros(batch, width - 1, features.shape[2]) if state is None else state
        context = torch.cat([past, features], dim=1)
        windows = context.unfold(1, width, 1).transpose(2, 3)          # (batch, steps, width, n_features)
        if steps is not None:
            windows = windows[torch.arange(batch)[:, None], steps]
        pooled = pool(self.cfg, self.attention, *self.encoder(windows.flatten(0, 1)))[0]
        logits = self.classifier(self.drop(pooled)).view(batch, -1, self.cfg.classes)
        return logits, context[:, context.shape[1] - (width - 1):]

    def forward(self, wave: torch.Tensor, spec_augment: bool = False, steps: torch.Tensor | None = None):
        """wave (batch, samples) from a reset state -> logits per step (batch, steps, classes). Waveform
        augmentation happens before words are placed in a training sequence; here only SpecAugment."""
        fe, augment = self.frontend, spec_augment and self.training
        return self.classify(fe.stack(fe.normalise(fe.raw_features(wave, augment), augment)), steps=steps)[0]

    def clip_logits(self, wave: torch.Tensor, average_s: float = 0.5) -> torch.Tensor:
        """A clip's decision at its end, from a reset state: the log of the posteriors averaged over the last
        `average_s` (the decision layer's window), so that accuracy on clips measures what streaming decides."""
        probs = torch.softmax(self(wave).float(), dim=-1)
        window = max(1, round(average_s / self.step_seconds))
        return torch.log(probs[:, -window:].mean(dim=1).clamp_min(1e-12))
