"""The language-model task: what the trainer needs to train and validate a LanguageModel."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..config import Settings
from ..device import autocast
from ..encoder import resolve_params
from ..errors import UserError, positive
from ..task import EvalContext
from .corpus import TextCorpus
from .model import LanguageModel, LMModelConfig
from .tokenizer import tokenizer_from_state, train_tokenizer


@dataclass
class LMConfig(Settings):
    data: str = "data/tinyshakespeare/input.txt"
    tokenizer: str = "char"
    vocab_size: int = 2000       # SentencePiece only
    cell: str = "lstm"
    layers: int = 2
    hidden: int = 256
    params: int = 0              # when set, --hidden is chosen to give the model about this many parameters
    forget_bias: float = 0.0
    embed: int = 0
    dropout: float = 0.0
    tie_weights: bool = False
    bidirectional: bool = False
    batch_size: int = 32
    seq_len: int = 128
    val_fraction: float = 0.1
    eval_streams: int = 16       # validation during training runs this many contiguous streams at once
    val_tokens: int = 1_000_000  # validation during training scores at most this many tokens (evaluate.py: all)
    seed: int = 1337

    def check(self) -> "LMConfig":
        for name in ("vocab_size", "layers", "hidden", "batch_size", "seq_len", "eval_streams", "val_tokens"):
            positive(f"--{name.replace('_', '-')}", getattr(self, name))
        positive("--embed", self.embed, allow_zero=True)
        if not 0 < self.val_fraction < 1:
            raise UserError(f"--val-fraction must be between 0 and 1, got {self.val_fraction}")
        return self



def model_config(cfg: LMConfig, vocab_size: int) -> LMModelConfig:
    return LMModelConfig(vocab_size, cfg.cell, cfg.layers, cfg.hidden, cfg.embed, cfg.dropout, cfg.tie_weights,
                         cfg.bidirectional, cfg.forget_bias)


class LMTask:
    name = "lm"
    select_metric = "loss"
    select_mode = "min"
    unit = "tok"

    def __init__(self, cfg: LMConfig, tokenizer=None, cache_dir: Path | None = None):
        self.cfg = cfg.check()
        LanguageModel(model_config(cfg, 2))  # refuse impossible models before reading any data
        text = TextCorpus(cfg.data, cfg.val_fraction)
        if tokenizer is None:
            tokenizer = train_tokenizer(cfg.tokenizer, lambda: text.text("train"), cfg.vocab_size)
        self.tokenizer = tokenizer
        resolve_params(cfg, lambda c: LanguageModel(model_config(c, tokenizer.vocab_size)))
        cache = (lambda split: cache_dir / f"{split}.ids") if cache_dir else (lambda split: None)
        self.train_ids = text.encode(tokenizer, "train", cache("train"))
        self.val_ids = text.encode(tokenizer, "val", cache("val"))
        if len(self.val_ids) > cfg.val_tokens + 1:  # a large corpus: validate on the start of its split
            self.val_ids = self.val_ids[: cfg.val_tokens + 1]
        self.val_chars = scored_chars(tokenizer, self.val_ids)
        if len(self.train_ids) < cfg.seq_len + 1:
            raise UserError(f"{cfg.data}: the training split has {len(self.train_ids)} tokens, fewer than one "
                            f"window of --seq-len {cfg.seq_len} + 1; use more text or a shorter --seq-len")
        if len(self.val_ids) < 2:
            raise UserError(f"{cfg.data}: the validation split (last {cfg.val_fraction:.0%}) is too short to score")

    def build_model(self) -> LanguageModel:
        return LanguageModel(model_config(self.cfg, self.tokenizer.vocab_size))

    def train_batch(self, step: int, rank: int, world: int) -> torch.Tensor:
        """Random windows (as nanoGPT): the global batch of `step` comes from a generator seeded by
        (seed, step), and each rank takes its slice."""
        cfg = self.cfg
        rng = np.random.default_rng([cfg.seed, step])
        starts = rng.integers(0, len(self.train_ids) - cfg.seq_len, size=cfg.batch_size)
        mine = np.array_split(starts, world)[rank]
        windows = np.stack([self.train_ids[s: s + cfg.seq_len + 1] for s in mine]).astype(np.int64)
        return torch.from_numpy(windows)

    def to_device(self, batch: torch.Tensor, device: torch.device) -> torch.Tensor:
        return batch.to(device, non_blocking=True)

    def loss(self, model, batch: torch.Tensor):
        logits, _ = model(batch[:, :-1])
        targets = batch[:, 1:]
        return F.cross_entropy(logits.float().flatten(0, 1), targets.flatten()), targets.numel()

    def evaluate(self, model, ctx: EvalContext) -> dict:
        return score_stream(model, self.val_ids, self.val_chars, ctx, streams=self.cfg.eval_streams)

    def state(self) -> dict:
        return {"config": asdict(self.cfg), "tokenizer": self.tokenizer.state()}


def scored_chars(tokenizer, ids: np.ndarray) -> int:
    """The first token is context, not a prediction: the characters that start after it are the ones scored
    (counted from the ids, exact when a byte piece holds part of a character)."""
    return tokenizer.count_chars(ids[1:])


def model_from_checkpoint(ckpt: dict) -> tuple[LanguageModel, object]:
    state = ckpt["task_state"]
    tokenizer = tokenizer_from_state(state["tokenizer"])
    cfg = LMConfig.from_dict(state["config"])
    model = LanguageModel(model_config(cfg, tokenizer.vocab_size))
    model.load_state_dict(ckpt["model"])
    return model.eval(), tokenizer


def score_stream(model, ids: np.ndarray, n_chars: int, ctx: EvalContext, streams: int = 1,
                 chunk: int = 512, burn_in: int = 256) -> dict:
    """Nats per character over `ids` read as contiguous streams with the state carried across chunks.
    streams=1 on one process reads the text as one stream. With more, the text is cut into pieces that run
    side by side; each piece first reads the `burn_in` tokens before it, unscored, to warm its state."""
    n_targets = len(ids) - 1
    pieces = min(streams * ctx.world, n_targets)
    bounds = np.linspace(0, n_targets, pieces + 1).astype(np.int64)
    mine = range(ctx.rank * pieces // ctx.world, (ctx.rank + 1) * pieces // ctx.world)
    rows, masks = [], []
    for k in mine:
        a, b = bounds[k], bounds[k + 1]
        first = max(0, a - burn_in)
        rows.append(np.asarray(ids[first: b + 1], dtype=np.int64))
        masks.append(np.arange(first, b) >= a)
    width = max((len(r) for r in rows), default=1)
    x = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width - 1, dtype=torch.bool)
    for i, (r, m) in enumerate(zip(rows, masks)):
        x[i, : len(r)] = torch.from_numpy(r)
        mask[i, : len(m)] = torch.from_numpy(m)
    x, mask = x.to(ctx.device), mask.to(ctx.device)
    nats = torch.zeros((), dtype=torch.float64, device=ctx.device)
    state = None
    for t in range(0, width - 1, chunk):
        inputs, targets = x[:, t: t + chunk], x[:, t + 1: t + chunk + 1]
        inputs = inputs[:, : targets.shape[1]]
        with autocast(ctx.device, ctx.precision):
            logits, state = model(inputs, state)
        nll = F.cross_entropy(logits.float().transpose(1, 2), targets, reduction="none")
        nats += (nll * mask[:, t: t + chunk]).sum().double()
    total = ctx.reduce_sum(torch.stack([nats, mask.sum().double()]))
    loss = total[0].item() / n_chars
    return {"loss": loss, "bpc": loss / math.log(2), "perplexity": math.exp(loss), "chars": n_chars,
            "tokens": int(total[1].item())}
