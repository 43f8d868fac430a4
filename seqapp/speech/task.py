"""The keyword-spotting task: what the trainer needs to train and validate a KeywordSpotter."""
from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..config import Settings
from ..device import autocast
from ..errors import UserError, positive
from ..task import EvalContext
from . import dataset as ds
from .audio import SAMPLE_RATE
from .features import FeatureConfig
from .model import KeywordSpotter, KWSModelConfig


@dataclass
class KWSConfig(Settings):
    data: str = "data/speech_commands"
    classes: int = 12
    features: str = "logmel"
    n_mels: int = 40
    cell: str = "gru"
    layers: int = 2
    hidden: int = 128
    dropout: float = 0.1
    bidirectional: bool = True
    pooling: str = "attention"
    batch_size: int = 64
    epochs: float | None = None  # when set, the training length in passes over the training clips
    balance: float = 0.5          # class c is drawn with weight count_c ** balance: 1 as found, 0 uniform
    silence_share: float = 0.1    # share of each batch that is _silence_ (12 classes)
    label_smoothing: float = 0.1
    augment: bool = True
    speed: float = 0.15
    noise_prob: float = 0.8
    skip_bad_files: bool = False
    seed: int = 1337

    def check(self) -> "KWSConfig":
        for name in ("layers", "hidden", "batch_size", "n_mels"):
            positive(f"--{name.replace('_', '-')}", getattr(self, name))
        positive("--epochs", self.epochs)
        ds.class_names(self.classes)
        return self


    def model_config(self) -> KWSModelConfig:
        return KWSModelConfig(len(ds.class_names(self.classes)), self.cell, self.layers, self.hidden, self.dropout,
                              self.bidirectional, self.pooling)

    def feature_config(self) -> FeatureConfig:
        cfg = FeatureConfig(features=self.features, n_mels=self.n_mels, speed=self.speed,
                            noise_prob=self.noise_prob)
        if not self.augment:
            cfg.speed = cfg.shift_ms = cfg.gain_db = cfg.noise_prob = 0.0
            cfg.freq_masks = cfg.time_masks = 0
        return cfg


def build_model(cfg: KWSConfig) -> KeywordSpotter:
    return KeywordSpotter(cfg.model_config(), cfg.feature_config())


class KWSTask:
    name = "kws"
    select_metric = "accuracy"
    select_mode = "max"
    unit = "clip"

    def __init__(self, cfg: KWSConfig):
        self.cfg = cfg.check()
        build_model(cfg)  # refuse impossible models before reading any audio
        self.names = ds.class_names(cfg.classes)
        root = Path(cfg.data)
        clips, noise_files = ds.scan(root)
        if ds.is_test_set_layout(clips):
            raise UserError(f"{root} is a test-set layout (_silence_/_unknown_ folders); train on the standard "
                            "layout and pass this folder to evaluate.py")
        splits = ds.assign_splits(root, clips)
        self.noise = ds.load_noise(noise_files)
        skip = cfg.skip_bad_files
        self.train_waves, self.train_labels, skipped = ds.load_labelled(splits["training"], self.names, skip,
                                                                        "training clips")
        self.val_waves, self.val_labels, skipped_val = ds.load_labelled(splits["validation"], self.names, skip,
                                                                        "validation clips")
        self.skipped = skipped + skipped_val
        if self.skipped:
            print(f"skipped {self.skipped} unreadable clip(s) (--skip-bad-files)", file=sys.stderr)
        if len(self.train_labels) == 0:
            raise UserError(f"{root}: no training clips for the {cfg.classes}-class task")
        self.class_indices = [np.flatnonzero(self.train_labels == c) for c in range(len(self.names))]
        self.probs = self._class_probabilities()
        if len(self.val_labels) == 0:
            print("note: no validation clips found; validating on the training clips", file=sys.stderr)
            self.val_waves, self.val_labels = self.train_waves, self.train_labels
        self.val_waves, self.val_labels = ds.add_silence(self.val_waves, self.val_labels, self.names, self.noise,
                                                         cfg.seed)

    def _class_probabilities(self) -> np.ndarray:
        counts = np.array([len(i) for i in self.class_indices], dtype=np.float64)
        weights = np.where(counts > 0, counts ** self.cfg.balance, 0.0)
        if ds.SILENCE in self.names:
            silence = self.names.index(ds.SILENCE)
            weights[silence] = 0.0
            weights = weights / weights.sum() * (1 - self.cfg.silence_share)
            weights[silence] = self.cfg.silence_share
        return weights / weights.sum()

    @property
    def steps_per_epoch(self) -> int:
        share = self.cfg.silence_share if ds.SILENCE in self.names else 0.0
        return max(1, math.ceil(len(self.train_labels) / (1 - share) / self.cfg.batch_size))

    def build_model(self) -> KeywordSpotter:
        model = build_model(self.cfg)
        model.frontend.set_noise(self.noise)
        return model

    def train_batch(self, step: int, rank: int, world: int):
        """Classes drawn with self.probs, a clip drawn within each class; _silence_ is cut from the noise
        recordings at a random gain. All from a generator seeded by (seed, step)."""
        rng = np.random.default_rng([self.cfg.seed, step])
        labels = rng.choice(len(self.names), size=self.cfg.batch_size, p=self.probs)
        picks = rng.random(self.cfg.batch_size)
        gains = rng.uniform(0, 1, self.cfg.batch_size)
        mine = np.array_split(np.arange(self.cfg.batch_size), world)[rank]
        waves = torch.zeros(len(mine), SAMPLE_RATE)
        for row, i in enumerate(mine):
            pool = self.class_indices[labels[i]]
            if len(pool):
                waves[row] = self.train_waves[pool[int(picks[i] * len(pool))]]
            elif len(self.noise) > SAMPLE_RATE:  # _silence_
                start = int(picks[i] * (len(self.noise) - SAMPLE_RATE))
                waves[row] = self.noise[start: start + SAMPLE_RATE] * gains[i]
        return waves, torch.from_numpy(labels[mine])

    def to_device(self, batch, device):
        waves, labels = batch
        return waves.to(device, non_blocking=True), labels.to(device, non_blocking=True)

    def loss(self, model, batch):
        waves, labels = batch
        logits = model(waves)
        return F.cross_entropy(logits.float(), labels, label_smoothing=self.cfg.label_smoothing), len(labels)

    def evaluate(self, model, ctx: EvalContext) -> dict:
        report = score(model, self.val_waves, self.val_labels, self.names, ctx)
        return {k: report[k] for k in ("accuracy", "loss", "macro_f1")}

    def state(self) -> dict:
        return {"config": asdict(self.cfg), "labels": list(self.names)}


def model_from_checkpoint(ckpt: dict) -> tuple[KeywordSpotter, list[str]]:
    cfg = KWSConfig.from_dict(ckpt["task_state"]["config"])
    model = build_model(cfg)
    model.load_state_dict(ckpt["model"])
    return model.eval(), list(ckpt["task_state"]["labels"])


@torch.no_grad()
def predict(model, waves: torch.Tensor, ctx: EvalContext, batch_size: int = 256) -> torch.Tensor:
    """Logits for every clip, in batches on the device."""
    model.eval()
    out = []
    for i in range(0, len(waves), batch_size):
        with autocast(ctx.device, ctx.precision):
            out.append(model(waves[i: i + batch_size].to(ctx.device)).float())
    return torch.cat(out) if out else torch.zeros(0, 1, device=ctx.device)


def score(model, waves: torch.Tensor, labels: np.ndarray, names: list[str], ctx: EvalContext) -> dict:
    """Accuracy, per-class precision/recall/F1 and the confusion matrix (rows: truth, columns: predicted).
    Each rank scores its share of the clips; the counts are summed over ranks."""
    share = np.array_split(np.arange(len(labels)), ctx.world)[ctx.rank]
    logits = predict(model, waves[share], ctx)
    truth = torch.as_tensor(labels[share], device=ctx.device)
    k = len(names)
    confusion = torch.zeros(k * k, dtype=torch.float64, device=ctx.device)
    loss = torch.zeros(1, dtype=torch.float64, device=ctx.device)
    if len(share):
        confusion.index_add_(0, truth * k + logits.argmax(1), torch.ones(len(share), dtype=torch.float64,
                                                                          device=ctx.device))
        loss += F.cross_entropy(logits, truth, reduction="sum").double()
    totals = ctx.reduce_sum(torch.cat([confusion, loss]))
    confusion = totals[:-1].reshape(k, k).cpu().numpy().astype(np.int64)
    return report(confusion, names, float(totals[-1]) / max(1, confusion.sum()))


def report(confusion: np.ndarray, names: list[str], loss: float) -> dict:
    per_class = {}
    for i, name in enumerate(names):
        tp, predicted, support = confusion[i, i], confusion[:, i].sum(), confusion[i].sum()
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": float(precision), "recall": float(recall), "f1": float(f1),
                           "support": int(support)}
    present = [c for c in per_class.values() if c["support"]]
    return {"accuracy": float(np.trace(confusion) / max(1, confusion.sum())), "loss": loss,
            "macro_f1": float(np.mean([c["f1"] for c in present])) if present else 0.0,
            "per_class": per_class, "confusion": confusion.tolist(), "labels": names,
            "clips": int(confusion.sum())}
