"""The keyword spotter: front end -> RecurrentEncoder -> pooling -> classifier."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..encoder import EncoderConfig, RecurrentEncoder
from ..errors import UserError
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


class KeywordSpotter(nn.Module):
    def __init__(self, cfg: KWSModelConfig, features: FeatureConfig):
        super().__init__()
        if cfg.pooling not in POOLINGS:
            raise UserError(f"unknown pooling {cfg.pooling!r} (choose last, mean or attention)")
        self.cfg = cfg
        self.frontend = FrontEnd(features)
        self.encoder = RecurrentEncoder(EncoderConfig(self.frontend.n_features, cfg.cell, cfg.layers, cfg.hidden,
                                                      cfg.dropout, cfg.bidirectional))
        size = self.encoder.output_size
        self.attention = AttentionPooling(size) if cfg.pooling == "attention" else None
        self.drop = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(size, cfg.classes)

    def pool(self, out: torch.Tensor, state) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.cfg.pooling == "mean":
            return out.mean(dim=1), None
        if self.cfg.pooling == "attention":
            return self.attention(out)
        h = state[0] if isinstance(state, tuple) else state        # (layers * directions, batch, hidden)
        directions = 2 if self.cfg.bidirectional else 1
        return torch.cat(list(h[-directions:]), dim=-1), None       # top layer, every direction

    def forward(self, wave: torch.Tensor, return_weights: bool = False):
        """wave (batch, 16000) -> logits (batch, classes) [, attention weights (batch, frames)]."""
        out, state = self.encoder(self.frontend(wave))
        pooled, weights = self.pool(out, state)
        logits = self.classifier(self.drop(pooled))
        return (logits, weights) if return_weights else logits
