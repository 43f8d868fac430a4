"""The small interface the trainer sees. The LM and the keyword spotter each implement it; the trainer
knows nothing of text or audio."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

import torch
from torch import nn


@dataclass
class EvalContext:
    """What an evaluation needs to know about where it runs. reduce_sum adds a tensor over all ranks."""

    device: torch.device
    precision: str
    rank: int = 0
    world: int = 1
    reduce_sum: Callable[[torch.Tensor], torch.Tensor] = lambda t: t


class Task(Protocol):
    name: str            # "lm", "kws": stored in checkpoints, checked on load
    select_metric: str   # the evaluate() key that picks best.pt
    select_mode: str     # "min" or "max"
    unit: str            # what throughput counts: "tok", "clip"

    def build_model(self) -> nn.Module: ...

    def train_batch(self, step: int, rank: int, world: int) -> Any:
        """This rank's share of the global batch for `step`: a pure function of (seed, step, rank), so
        resume and several processes reproduce the data order."""

    def to_device(self, batch: Any, device: torch.device) -> Any: ...

    def loss(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, int]:
        """Mean loss of the batch and the number of units it is averaged over."""

    def evaluate(self, model: nn.Module, ctx: EvalContext) -> dict: ...

    def state(self) -> dict:
        """Plain values and tensors that rebuild the model and its tokenizer / labels / features."""
