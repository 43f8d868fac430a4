"""One training loop for every task: AdamW, warm-up then warm-up-stable-decay (or cosine), clipping, mixed precision, periodic
validation, best/last checkpoints, exact resume, DDP, metrics. The task supplies model, batches and figures."""
from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from . import checkpoint, distributed
from .config import Settings
from .device import autocast, pick_device, pick_precision
from .errors import UserError, positive
from .metrics import MetricsLog
from .task import EvalContext, Task


@dataclass
class TrainConfig(Settings):
    out: str = "runs/run"
    steps: int = 1000
    lr: float = 2e-3
    warmup: int = 0              # linear warm-up steps
    schedule: str = "wsd"        # wsd: hold lr, then decay linearly over the last decay_fraction | cosine | constant
    decay_fraction: float = 0.2
    min_lr_ratio: float = 0.0    # where the decay ends, as a fraction of lr
    weight_decay: float = 0.01   # on weight matrices only
    grad_clip: float = 1.0
    eval_every: int = 200
    log_every: int = 10
    seed: int = 1337
    device: str = "auto"
    precision: str = "auto"
    tensorboard: bool = False
    patience: int = 0            # evaluations without improvement before stopping early; 0: never
    max_bad_steps: int = 20      # non-finite steps in a row before giving up

    def check(self) -> "TrainConfig":
        for name in ("steps", "eval_every", "log_every"):
            positive(f"--{name.replace('_', '-')}", getattr(self, name))
        for name in ("lr",):
            positive(f"--{name}", getattr(self, name))
        for name in ("warmup", "weight_decay", "grad_clip", "patience"):
            positive(f"--{name.replace('_', '-')}", getattr(self, name), allow_zero=True)
        if self.schedule not in SCHEDULES:
            raise UserError(f"unknown schedule {self.schedule!r} (choose {', '.join(SCHEDULES)})")
        if not 0 < self.decay_fraction <= 1:
            raise UserError(f"--decay-fraction must be in (0, 1], got {self.decay_fraction}")
        return self



SCHEDULES = ("wsd", "cosine", "constant")


def lr_factor(step: int, total: int, warmup: int = 0, schedule: str = "wsd", decay_fraction: float = 0.2,
              min_ratio: float = 0.0) -> float:
    """The learning rate of `step` as a fraction of the peak. wsd (warm-up, stable, decay) holds the peak
    and anneals only at the end: short runs are starved by cosine's early decay (docs/benchmarks.md)."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    decay_start = max(warmup, total * (1 - decay_fraction))
    if step < decay_start:
        return 1.0
    progress = min(1.0, (step - decay_start) / max(1, total - decay_start))
    return min_ratio + (1 - min_ratio) * (1 - progress)


def step_seed(seed: int, step: int, rank: int) -> int:
    """Every random draw of a step (dropout, augmentation) comes from this seed, so a resumed run draws
    exactly what the uninterrupted one would have drawn, and ranks draw differently."""
    return (seed * 1_000_003 + step * 7919 + rank * 104_729) % (2**63 - 1)


def make_optimizer(model: nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, fused=device.type == "cuda")


class Trainer:
    def __init__(self, task: Task, cfg: TrainConfig, resume: dict | None = None):
        self.task, self.cfg = task, cfg.check()
        self.dist = distributed.init(cfg.device)
        self.device = pick_device(cfg.device, self.dist.local_rank)
        self.precision = pick_precision(cfg.precision, self.device)
        self.out = Path(cfg.out)
        torch.manual_seed(cfg.seed)  # the initial weights
        self.model = task.build_model().to(self.device)
        self.optimizer = make_optimizer(self.model, cfg, self.device)
        schedule = partial(lr_factor, total=cfg.steps, warmup=cfg.warmup, schedule=cfg.schedule,
                           decay_fraction=cfg.decay_fraction, min_ratio=cfg.min_lr_ratio)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.step, self.best, self.evals_since_best, self.skipped = 0, None, 0, 0
        self.eval_seconds = 0.0
        self.train_seconds = 0.0  # time spent in training steps (validation and checkpoints not counted)
        if resume is not None:
            self._restore(resume)
        self.train_model = self.model
        if self.dist.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.train_model = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.log = None
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            self.log = MetricsLog(self.out, cfg.tensorboard, resume_step=self.step if resume else None)
            config = {"task": task.name, "train": asdict(cfg), "task_config": task.state().get("config", {}),
                      "resolved": {"device": str(self.device), "precision": self.precision, "world_size": self.dist.world}}
            (self.out / "config.json").write_text(json.dumps(config, indent=2) + "\n")

    # --- checkpoints -------------------------------------------------------------------------------
    def _payload(self, full: bool) -> dict:
        payload = {
            "task": self.task.name,
            "task_state": self.task.state(),
            "train_config": asdict(self.cfg),
            "model": self.model.state_dict(),
            "step": self.step,
            "best": self.best,
            "precision": self.precision,
        }
        if full:
            payload.update(optimizer=self.optimizer.state_dict(), scheduler=self.scheduler.state_dict(),
                           scaler=self.scaler.state_dict(), evals_since_best=self.evals_since_best,
                           skipped=self.skipped, train_seconds=self.train_seconds)
        return payload

    def _restore(self, ckpt: dict) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        self.step, self.best = ckpt["step"], ckpt["best"]
        self.evals_since_best, self.skipped = ckpt["evals_since_best"], ckpt["skipped"]
        self.train_seconds = ckpt.get("train_seconds", 0.0)

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        return value < self.best if self.task.select_mode == "min" else value > self.best

    # --- the loop ----------------------------------------------------------------------------------
    def _train_step(self) -> tuple[float, int, bool]:
        cfg, rank, world = self.cfg, self.dist.rank, self.dist.world
        torch.manual_seed(step_seed(cfg.seed, self.step, rank))
        batch = self.task.to_device(self.task.train_batch(self.step, rank, world), self.device)
        self.train_model.train()
        with autocast(self.device, self.precision):
            loss, count = self.task.loss(self.train_model, batch)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        norm = nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip or float("inf"))
        finite = bool(torch.isfinite(norm))  # gradients are already all-reduced: every rank agrees
        if self.scaler.is_enabled():
            self.scaler.step(self.optimizer)  # skips the update itself on inf/NaN
            self.scaler.update()
        elif finite:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        with warnings.catch_warnings():  # a skipped first step makes the scheduler warn about step order
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
            self.scheduler.step()
        self.step += 1
        return loss.item(), count, finite

    def evaluate(self) -> dict:
        started = time.perf_counter()
        try:
            return self._evaluate()
        finally:
            self.eval_seconds += time.perf_counter() - started

    def _evaluate(self) -> dict:
        ctx = EvalContext(self.device, self.precision, self.dist.rank, self.dist.world, self.dist.reduce_sum)
        self.model.eval()
        with torch.no_grad():
            return self.task.evaluate(self.model, ctx)

    def _validate_and_save(self, bar) -> bool:
        """Validate, write checkpoints and curves; True when patience says stop."""
        figures = self.evaluate()
        value = figures[self.task.select_metric]
        improved = self._improved(value)
        if improved:
            self.best, self.evals_since_best = value, 0
        else:
            self.evals_since_best += 1
        if self.dist.is_main:
            self.log.write("val", self.step, {**figures, "train_seconds": round(self.train_seconds, 3)})
            if improved:
                checkpoint.save(self._payload(full=False), self.out / "best.pt")
            checkpoint.save(self._payload(full=True), self.out / "last.pt")
            self.log.plot(self.task.select_metric)
            shown = ", ".join(f"{k} {v:.4f}" for k, v in figures.items() if isinstance(v, float))
            bar.write(f"step {self.step}: {shown}{' (best)' if improved else ''}")
        stop = self.cfg.patience > 0 and self.evals_since_best >= self.cfg.patience
        return self.dist.broadcast_flag(stop, self.device)

    def fit(self) -> dict:
        cfg = self.cfg
        bar = tqdm(total=cfg.steps, initial=self.step, disable=not self.dist.is_main, unit="step",
                   dynamic_ncols=True, desc=f"train {self.task.name}")
        bad_in_a_row, window_loss, window_units, window_steps = 0, 0.0, 0, 0
        tick, started = time.perf_counter(), time.perf_counter()
        stopped_early = False
        try:
            while self.step < cfg.steps:
                step_started = time.perf_counter()
                loss, count, finite = self._train_step()
                self.train_seconds += time.perf_counter() - step_started
                bar.update(1)
                if finite:
                    bad_in_a_row = 0
                    window_loss, window_units, window_steps = window_loss + loss, window_units + count, window_steps + 1
                else:
                    self.skipped, bad_in_a_row = self.skipped + 1, bad_in_a_row + 1
                    if self.dist.is_main:
                        self.log.write("train", self.step, {"skipped_nonfinite": self.skipped})
                    if bad_in_a_row >= cfg.max_bad_steps:
                        raise UserError(f"training stopped at step {self.step}: {bad_in_a_row} non-finite losses "
                                        f"in a row (try a lower --lr); the last good checkpoint is {self.out / 'last.pt'}")
                if self.step % cfg.log_every == 0 and window_steps and self.dist.is_main:
                    now = time.perf_counter()
                    rate = window_units * self.dist.world / (now - tick)
                    row = {"loss": window_loss / window_steps, "lr": self.scheduler.get_last_lr()[0],
                           f"{self.task.unit}_per_s": rate}
                    self.log.write("train", self.step, row)
                    bar.set_postfix(loss=f"{row['loss']:.3f}", lr=f"{row['lr']:.2e}",
                                    **{f"{self.task.unit}/s": f"{rate:,.0f}"})
                    tick, window_loss, window_units, window_steps = now, 0.0, 0, 0
                if self.step % cfg.eval_every == 0 or self.step == cfg.steps:
                    stop = self._validate_and_save(bar)
                    tick = time.perf_counter()  # throughput counts training, not validation
                    if stop:
                        stopped_early = True
                        if self.dist.is_main:
                            bar.write(f"early stop: no better {self.task.select_metric} in {cfg.patience} evaluations")
                        break
        finally:
            bar.close()
            if self.log is not None:
                self.log.close()
        return {"step": self.step, "best": self.best, "seconds": time.perf_counter() - started,
                "eval_seconds": self.eval_seconds,
                "skipped_nonfinite": self.skipped, "stopped_early": stopped_early, "out": str(self.out)}


def run(task: Task, cfg: TrainConfig, resume: dict | None = None) -> dict:
    trainer = Trainer(task, cfg, resume)
    try:
        return trainer.fit()
    finally:
        distributed.shutdown()
