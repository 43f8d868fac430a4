"""A RecurrentEncoder with a linear read-out: of the last step (adding) or of every step (copy)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..encoder import EncoderConfig, RecurrentEncoder


@dataclass
class SynthModelConfig:
    inputs: int
    outputs: int
    cell: str = "lstm"
    layers: int = 1
    hidden: int = 128
    dropout: float = 0.0
    forget_bias: float = 0.0
    per_step: bool = False


class SynthModel(nn.Module):
    def __init__(self, cfg: SynthModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = RecurrentEncoder(EncoderConfig(cfg.inputs, cfg.cell, cfg.layers, cfg.hidden, cfg.dropout,
                                                      forget_bias=cfg.forget_bias))
        self.head = nn.Linear(cfg.hidden, cfg.outputs)

    def read_out(self, out: torch.Tensor) -> torch.Tensor:
        """Encoder outputs (batch, time, hidden) -> predictions: per step, or of the last step."""
        return self.head(out if self.cfg.per_step else out[:, -1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.read_out(self.encoder(x)[0])
