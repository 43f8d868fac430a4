"""One training loop for every task: AdamW, warm-up then warm-up-stable-decay (or cosine), clipping, mixed
precision, periodic validation, best/last checkpoints, exact resume, DDP, metrics, a time budget. The task
supplies model, batches and figures."""
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
from .device import autocast, keep_freed_memory, pick_device, pick_precision
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
    pretrained_lr_ratio: float = 0.1  # pretrained weights being fine-tuned learn at lr x this, undecayed
    grad_clip: float = 1.0
    ema: float = 0.0             # validate and keep (best.pt) an exponential moving average of the weights; 0: off
    eval_every: int = 200
    log_every: int = 10
    seed: int = 1337
    device: str = "auto"
    precision: str = "auto"
    tensorboard: bool = False
    patience: int = 0            # evaluations without improvement before stopping early; 0: never
    max_bad_steps: int = 20      # non-finite steps in a row before giving up
    time_budget: float = 0.0     # seconds of training (validation and checkpoints not counted); 0: --steps decides
    budget_evals: int = 10       # under a time budget, validations spread evenly over it

    def check(self) -> "TrainConfig":
        for name in ("steps", "eval_every", "log_every"):
            positive(f"--{name.replace('_', '-')}", getattr(self, name))
        for name in ("lr",):
            positive(f"--{name}", getattr(self, name))
        positive("--budget-evals", self.budget_evals)
        for name in ("warmup", "weight_decay", "grad_clip", "patience", "time_budget", "pretrained_lr_ratio"):
            positive(f"--{name.replace('_', '-')}", getattr(self, name), allow_zero=True)
        if self.schedule not in SCHEDULES:
            raise UserError(f"unknown schedule {self.schedule!r} (choose {', '.join(SCHEDULES)})")
        if not 0 < self.decay_fraction <= 1:
            raise UserError(f"--decay-fraction must be in (0, 1], got {self.decay_fraction}")
        if not 0 <= self.ema < 1:
            raise UserError(f"--ema must be in [0, 1), got {self.ema}")
        return self



SCHEDULES = ("wsd", "cosine", "constant")


def lr_factor(step: int, total: int, warmup: int = 0, schedule: str = "wsd", decay_fraction: float = 0.2,
              min_ratio: float = 0.0) -> float:
    """The learning rate of `step` as a fraction of the peak. wsd (warm-up, stable, decay) holds the peak
    and anneals only at the end: short runs are starved by cosine's early decay (docs/language_model.md)."""
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


def moving_average(model: nn.Module, decay: float) -> torch.optim.swa_utils.AveragedModel:
    """An exponential moving average of `model`'s weights, updated after each step. Its decay ramps up as
    (1 + n) / (10 + n) over the first updates (TensorFlow's ExponentialMovingAverage with num_updates) so that the
    average soon forgets the initial weights."""
    def average(kept, new, n):
        rate = ((1 + n) / (10 + n)).clamp(max=decay)  # n: a tensor on the device (no sync a step)
        return kept + (new - kept) * (1 - rate)

    return torch.optim.swa_utils.AveragedModel(model, avg_fn=average)


def make_optimizer(model: nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """AdamW with weight decay on weight matrices. Parameters marked `pretrained` (weights loaded from elsewhere
    and fine-tuned) learn more slowly and are not decayed: decay would pull them towards zero, not towards what
    they were."""
    trained = [p for p in model.parameters() if p.requires_grad]
    pretrained = [p for p in trained if getattr(p, "pretrained", False)]
    fresh = [p for p in trained if not getattr(p, "pretrained", False)]
    groups = [{"params": [p for p in fresh if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in fresh if p.dim() < 2], "weight_decay": 0.0}]
    if pretrained:
        groups.append({"params": pretrained, "weight_decay": 0.0, "lr": cfg.lr * cfg.pretrained_lr_ratio})
    return torch.optim.AdamW(groups, lr=cfg.lr, fused=device.type == "cuda")


class Trainer:
    def __init__(self, task: Task, cfg: TrainConfig, resume: dict | None = None, on_validation=None):
        """on_validation(k, figures), if given, hears the k-th validation of this process (a tuner prunes
        with it: raising there stops the run, with its checkpoints written)."""
        self.task, self.cfg = task, cfg.check()
        self.on_validation, self.validations = on_validation, 0
        self.dist = distributed.init(cfg.device)
        self.device = pick_device(cfg.device, self.dist.local_rank)
        keep_freed_memory()
        self.precision = pick_precision(cfg.precision, self.device)
        self.out = Path(cfg.out)
        torch.manual_seed(cfg.seed)  # the initial weights
        self.model = task.build_model().to(self.device)
        self.optimizer = make_optimizer(self.model, cfg, self.device)
        self.averaged = moving_average(self.model, cfg.ema) if cfg.ema else None
        self.end_step = None  # under a time budget: the last step, once the measured speed fixes it
        schedule = partial(lr_factor, warmup=cfg.warmup, schedule=cfg.schedule, decay_fraction=cfg.decay_fraction,
                           min_ratio=cfg.min_lr_ratio)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: schedule(step, total=self.total_steps()))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.step, self.best, self.evals_since_best, self.skipped = 0, None, 0, 0
        self.eval_seconds = 0.0
        self.train_seconds = 0.0  # time spent in training steps (validation and checkpoints not counted)
        self.speed_mark = None    # (step, train_seconds) from which a time budget's speed is measured
        self.evals_done = 0       # validations a time budget has made so far
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

    def kept_model(self) -> nn.Module:
        """The weights validated and kept in best.pt: the moving average under --ema (with the model's buffers as
        they are now: the average holds a copy from the start), else those trained."""
        if self.averaged is None:
            return self.model
        for kept, current in zip(self.averaged.module.buffers(), self.model.buffers()):
            kept.copy_(current)
        return self.averaged.module

    # --- checkpoints -------------------------------------------------------------------------------
    def _payload(self, full: bool) -> dict:
        payload = {
            "task": self.task.name,
            "task_state": self.task.state(),
            "train_config": asdict(self.cfg),
            "model": (self.model if full else self.kept_model()).state_dict(),
            "step": self.step,
            "best": self.best,
            "precision": self.precision,
        }
        if full:
            payload.update(optimizer=self.optimizer.state_dict(), scheduler=self.scheduler.state_dict(),
                           scaler=self.scaler.state_dict(), evals_since_best=self.evals_since_best,
                           skipped=self.skipped, train_seconds=self.train_seconds, end_step=self.end_step)
            if self.averaged is not None:
                payload["averaged"] = self.averaged.state_dict()
        return payload

    def _restore(self, ckpt: dict) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        if self.averaged is not None:
            if "averaged" not in ckpt:
                raise UserError("--ema was not on in the run being resumed: resume it without --ema")
            self.averaged.load_state_dict(ckpt["averaged"])
        self.step, self.best = ckpt["step"], ckpt["best"]
        self.evals_since_best, self.skipped = ckpt["evals_since_best"], ckpt["skipped"]
        self.train_seconds = ckpt.get("train_seconds", 0.0)
        self.end_step = ckpt.get("end_step")

    # --- a time budget -----------------------------------------------------------------------------
    def total_steps(self) -> int:
        """The step the schedule ends at: --steps, or under a time budget the end step once it is fixed (until
        then the schedule holds its peak: wsd's stable phase, the start of cosine)."""
        if not self.cfg.time_budget:
            return self.cfg.steps
        return self.end_step if self.end_step is not None else 2**62

    def _fix_end_step(self, bar) -> None:
        """When the schedule first needs to know the end (wsd: where its decay starts; cosine and constant:
        after 5% of the budget), turn the time left into steps at the speed measured so far. From then on the
        run is counted in steps, and the end step is stored in last.pt: a resumed run ends at the same step."""
        cfg = self.cfg
        fix_at = cfg.time_budget * ((1 - cfg.decay_fraction) if cfg.schedule == "wsd" else 0.05)
        if self.end_step is not None:
            return
        if self.speed_mark is None and self.train_seconds >= fix_at / 2:
            self.speed_mark = (self.step, self.train_seconds)  # the speed is measured past the slow first steps
        if self.train_seconds < fix_at or self.step == 0:
            return
        mark_step, mark_seconds = self.speed_mark if self.speed_mark and self.speed_mark[0] < self.step else (0, 0.0)
        per_step = (self.train_seconds - mark_seconds) / (self.step - mark_step)
        self.end_step = self.step + max(1, round((cfg.time_budget - self.train_seconds) / per_step))
        if self.dist.is_main:
            self.log.write("train", self.step, {"end_step": self.end_step})
            bar.write(f"time budget: {per_step * 1000:.0f} ms per step, so the run ends at step {self.end_step}")

    def finished(self) -> bool:
        if not self.cfg.time_budget:
            return self.step >= self.cfg.steps
        return self.end_step is not None and self.step >= self.end_step

    def _validation_due(self) -> bool:
        cfg = self.cfg
        if not cfg.time_budget:
            return self.step % cfg.eval_every == 0 or self.step == cfg.steps
        period = cfg.time_budget / cfg.budget_evals
        due = self.finished() or int(self.train_seconds // period) > self.evals_done
        if due:
            self.evals_done = int(self.train_seconds // period)
        return due

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
        if self.averaged is not None and finite:
            self.averaged.update_parameters(self.model)
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
        model = self.kept_model()
        model.eval()
        with torch.no_grad():
            return self.task.evaluate(model, ctx)

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
        self.validations += 1
        if self.on_validation is not None:
            self.on_validation(self.validations, figures)
        stop = self.cfg.patience > 0 and self.evals_since_best >= self.cfg.patience
        return self.dist.broadcast_flag(stop, self.device)

    def fit(self) -> dict:
        cfg = self.cfg
        budget = cfg.time_budget
        bar = tqdm(total=round(budget) if budget else cfg.steps, initial=round(self.train_seconds) if budget else self.step,
                   disable=not self.dist.is_main, unit="s" if budget else "step", dynamic_ncols=True,
                   desc=f"train {self.task.name}" + (" (training seconds)" if budget else ""))
        bad_in_a_row, window_loss, window_units, window_steps = 0, 0.0, 0, 0
        tick, started = time.perf_counter(), time.perf_counter()
        self.evals_done = int(self.train_seconds // (budget / cfg.budget_evals)) if budget else 0
        stopped_early = False
        try:
            while not self.finished():
                step_started = time.perf_counter()
                loss, count, finite = self._train_step()
                self.train_seconds += time.perf_counter() - step_started
                if budget:
                    self.train_seconds = self.dist.broadcast_value(self.train_seconds, self.device)  # rank 0's clock
                    self._fix_end_step(bar)
                    bar.update(min(round(self.train_seconds), bar.total) - bar.n)
                else:
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
                if self._validation_due():
                    validation_started = time.perf_counter()
                    stop = self._validate_and_save(bar)
                    tick += time.perf_counter() - validation_started  # throughput counts training, not validation
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


def run(task: Task, cfg: TrainConfig, resume: dict | None = None, on_validation=None) -> dict:
    trainer = Trainer(task, cfg, resume, on_validation)
    try:
        return trainer.fit()
    finally:
        distributed.shutdown()
