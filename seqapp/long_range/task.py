"""Long-range dependency problems, generated on the fly (the batch of step n is a function of (seed, n)):

- adding (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016; locuslab/TCN): two channels, values U[0, 1]
  and a marker on one position in each half; the target is the sum of the two marked values (MSE). Always
  predicting 1 scores Var = 1/6 ~ 0.167, the baseline.
- copy (Arjovsky et al. 2016): 10 symbols from an alphabet of 8, T - 1 blanks, a delimiter, 10 blanks; the
  output is blank until the delimiter and then the 10 symbols (cross-entropy at every step). A memoryless
  model scores 10 ln 8 / (T + 20), the baseline.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..config import Settings
from ..encoder import resolve_params
from ..errors import UserError, positive
from ..task import EvalContext
from .model import SynthModel, SynthModelConfig

PROBLEMS = ("adding", "copy")
COPY_SYMBOLS, COPY_ALPHABET = 10, 8          # symbols 1..8; 0 is the blank, 9 the delimiter
COPY_CLASSES = COPY_ALPHABET + 2


@dataclass
class SynthConfig(Settings):
    problem: str = "adding"
    length: int = 100            # T: the span the model must bridge
    cell: str = "lstm"
    layers: int = 1
    hidden: int = 128
    params: int = 0              # when set, --hidden is chosen to give the model about this many parameters
    forget_bias: float = 0.0
    dropout: float = 0.0
    batch_size: int = 32
    val_size: int = 1000         # fixed validation sequences
    seed: int = 1337

    def check(self) -> "SynthConfig":
        if self.problem not in PROBLEMS:
            raise UserError(f"unknown problem {self.problem!r} (choose {', '.join(PROBLEMS)})")
        for name in ("length", "layers", "batch_size", "val_size"):
            positive(f"--{name.replace('_', '-')}", getattr(self, name))
        if self.problem == "adding" and self.length < 2:
            raise UserError("--length must be at least 2 for the adding problem (one marker in each half)")
        return self

    def model_config(self) -> SynthModelConfig:
        inputs, outputs = (2, 1) if self.problem == "adding" else (COPY_CLASSES, COPY_CLASSES)
        return SynthModelConfig(inputs, outputs, self.cell, self.layers, self.hidden, self.dropout, self.forget_bias,
                                per_step=self.problem == "copy")


def adding_batch(rng: np.random.Generator, size: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    values = rng.uniform(0, 1, (size, length))
    half = length // 2
    first, second = rng.integers(0, half, size), rng.integers(half, length, size)
    markers = np.zeros((size, length))
    markers[np.arange(size), first] = markers[np.arange(size), second] = 1
    x = np.stack([values, markers], axis=-1).astype(np.float32)
    y = (values * markers).sum(axis=1, keepdims=True).astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(y)


def copy_batch(rng: np.random.Generator, size: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    total = length + 2 * COPY_SYMBOLS
    symbols = rng.integers(1, COPY_ALPHABET + 1, (size, COPY_SYMBOLS))
    inputs = np.zeros((size, total), dtype=np.int64)
    inputs[:, :COPY_SYMBOLS] = symbols
    inputs[:, COPY_SYMBOLS + length - 1] = COPY_CLASSES - 1  # the delimiter
    targets = np.zeros((size, total), dtype=np.int64)
    targets[:, -COPY_SYMBOLS:] = symbols
    return F.one_hot(torch.from_numpy(inputs), COPY_CLASSES).float(), torch.from_numpy(targets)


def baseline(cfg: SynthConfig) -> float:
    """The loss of the best model that remembers nothing."""
    return 1 / 6 if cfg.problem == "adding" else COPY_SYMBOLS * math.log(COPY_ALPHABET) / (cfg.length + 2 * COPY_SYMBOLS)


class SynthTask:
    name = "synth"
    select_metric = "loss"
    select_mode = "min"
    unit = "seq"

    def __init__(self, cfg: SynthConfig):
        self.cfg = cfg.check()
        resolve_params(cfg, lambda c: SynthModel(c.model_config()))
        SynthModel(cfg.model_config())  # refuse impossible models early
        self.make = adding_batch if cfg.problem == "adding" else copy_batch
        self.val = self.make(np.random.default_rng([cfg.seed, 2**31]), cfg.val_size, cfg.length)

    def build_model(self) -> SynthModel:
        return SynthModel(self.cfg.model_config())

    def train_batch(self, step: int, rank: int, world: int):
        x, y = self.make(np.random.default_rng([self.cfg.seed, step]), self.cfg.batch_size, self.cfg.length)
        mine = np.array_split(np.arange(self.cfg.batch_size), world)[rank]
        return x[mine], y[mine]

    def to_device(self, batch, device):
        return tuple(t.to(device, non_blocking=True) for t in batch)

    def loss(self, model, batch):
        x, y = batch
        out = model(x).float()
        if self.cfg.problem == "adding":
            return F.mse_loss(out, y), len(x)
        return F.cross_entropy(out.flatten(0, 1), y.flatten()), len(x)

    def evaluate(self, model, ctx: EvalContext) -> dict:
        share = np.array_split(np.arange(self.cfg.val_size), ctx.world)[ctx.rank]
        x, y = (t[share].to(ctx.device) for t in self.val)
        out = model(x).float()
        if self.cfg.problem == "adding":
            loss, correct = F.mse_loss(out, y, reduction="sum"), (out - y).abs().lt(0.04).sum()
            units = len(x)
        else:
            tail = slice(-COPY_SYMBOLS, None)  # accuracy on the symbols to recall, where memory is needed
            loss = F.cross_entropy(out.flatten(0, 1), y.flatten(), reduction="sum") / y.shape[1]
            correct, units = (out[:, tail].argmax(-1) == y[:, tail]).sum(), len(x) * COPY_SYMBOLS
        totals = ctx.reduce_sum(torch.stack([loss.double(), correct.double(), torch.tensor(float(units),
                                                                                           device=ctx.device)]))
        n = self.cfg.val_size
        return {"loss": float(totals[0]) / n, "accuracy": float(totals[1] / totals[2]), "baseline": baseline(self.cfg)}

    def state(self) -> dict:
        return {"config": asdict(self.cfg)}


def model_from_checkpoint(ckpt: dict) -> tuple[SynthModel, SynthConfig]:
    cfg = SynthConfig.from_dict(ckpt["task_state"]["config"])
    model = SynthModel(cfg.model_config())
    model.load_state_dict(ckpt["model"])
    return model.eval(), cfg
