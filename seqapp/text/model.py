"""The character (or SentencePiece) language model: embedding -> RecurrentEncoder -> projection."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..encoder import EncoderConfig, RecurrentEncoder
from ..errors import UserError


@dataclass
class LMModelConfig:
    vocab_size: int
    cell: str = "lstm"
    layers: int = 2
    hidden: int = 256
    embed: int = 0          # 0: same as hidden
    dropout: float = 0.0
    tie_weights: bool = False
    bidirectional: bool = False
    forget_bias: float = 0.0


class LanguageModel(nn.Module):
    def __init__(self, cfg: LMModelConfig):
        super().__init__()
        if cfg.bidirectional:
            raise UserError("a language model predicts the next token from the past: it cannot be bidirectional")
        embed = cfg.embed or cfg.hidden
        if cfg.tie_weights and embed != cfg.hidden:
            raise UserError(f"--tie-weights needs the embedding size ({embed}) to equal --hidden ({cfg.hidden})")
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, embed)
        self.encoder = RecurrentEncoder(EncoderConfig(embed, cfg.cell, cfg.layers, cfg.hidden, cfg.dropout,
                                                    forget_bias=cfg.forget_bias))
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden, cfg.vocab_size)
        if cfg.tie_weights:
            self.head.weight = self.embed.weight

    def forward(self, ids: torch.Tensor, state=None):
        """ids (batch, time) -> logits (batch, time, vocab), final state."""
        out, state = self.encoder(self.drop(self.embed(ids)), state=state)
        return self.head(self.drop(out)), state

    def step(self, token: torch.Tensor, state=None):
        """One token per stream: token (batch,) -> logits (batch, vocab), new state. For generation."""
        out, state = self.encoder.step(self.embed(token), state)
        return self.head(out), state
