"""seqapp against a minimal plain-PyTorch loop: same model, batch, schedule and data, side by side.

    python bench/lm/train_speed.py --data ../shared/data/tinyshakespeare/input.txt [--steps 600]

Prints training tokens/s for both and their ratio, the validation loss of both (scored the same way:
the last 10% as one contiguous stream), and generation characters/s for seqapp's sampler and for a plain
stateful nn.LSTM loop. The plain loop is the one a user writes first (AdamW at a constant learning rate);
seqapp runs with its defaults (warm-up-stable-decay schedule, clipping at 1.0).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from seqapp.text.generate import generate  # noqa: E402
from seqapp.text.task import LMConfig, LMTask  # noqa: E402
from seqapp.trainer import Trainer, TrainConfig  # noqa: E402


class PlainLM(nn.Module):
    def __init__(self, vocab, hidden, layers, dropout):
        super().__init__()
        self.emb = nn.Embedding(vocab, hidden)
        self.lstm = nn.LSTM(hidden, hidden, layers, dropout=dropout, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, x, state=None):
        h, state = self.lstm(self.drop(self.emb(x)), state)
        return self.out(self.drop(h)), state


def plain_train(train_ids, vocab, args) -> tuple[nn.Module, float]:
    """The loop a user writes first: AdamW at a constant learning rate, no schedule, no clipping."""
    torch.manual_seed(args.seed)
    model = PlainLM(vocab, args.hidden, args.layers, args.dropout)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    data = torch.from_numpy(train_ids.astype("int64"))
    model.train()
    start = time.perf_counter()
    for _ in range(args.steps):
        ix = torch.randint(len(data) - args.seq_len - 1, (args.batch_size,))
        batch = torch.stack([data[i: i + args.seq_len + 1] for i in ix])
        logits, _ = model(batch[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), batch[:, 1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model, time.perf_counter() - start


@torch.no_grad()
def stream_loss(model, ids, chunk=512) -> float:
    """The last 10% as one stream, state carried: the same yardstick for both models."""
    model.eval()
    x = torch.from_numpy(ids.astype("int64"))[None]
    state, nats = None, 0.0
    for t in range(0, x.shape[1] - 1, chunk):
        inp, tgt = x[:, t: t + chunk], x[:, t + 1: t + chunk + 1]
        logits, state = model(inp[:, : tgt.shape[1]], state)
        nats += F.cross_entropy(logits.flatten(0, 1), tgt.flatten(), reduction="sum").item()
    return nats / (x.shape[1] - 1)


@torch.no_grad()
def plain_generate_rate(model, n=300) -> float:
    """What a user writes first: the module called once per character, oneDNN left on."""
    model.eval()
    tok, state = torch.zeros(1, 1, dtype=torch.long), None
    start = time.perf_counter()
    for _ in range(n):
        logits, state = model(tok, state)
        tok = torch.multinomial(torch.softmax(logits[0, -1] / 0.8, -1), 1)[None]
    return n / (time.perf_counter() - start)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="data/tinyshakespeare/input.txt")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup", type=int, default=0)
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--gen-chars", type=int, default=3000)
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    with tempfile.TemporaryDirectory() as out:
        lm_cfg = LMConfig(data=args.data, hidden=args.hidden, layers=args.layers, dropout=args.dropout,
                          batch_size=args.batch_size, seq_len=args.seq_len, seed=args.seed)
        task = LMTask(lm_cfg)
        tokens = args.steps * args.batch_size * args.seq_len

        plain, plain_s = plain_train(task.train_ids, task.tokenizer.vocab_size, args)
        plain_rate = tokens / plain_s
        print(f"plain loop : {plain_rate:9,.0f} tok/s ({plain_s:.1f} s)")

        cfg = TrainConfig(out=out, steps=args.steps, lr=args.lr, warmup=args.warmup, eval_every=args.steps,
                          seed=args.seed, device="cpu", precision="fp32")
        trainer = Trainer(task, cfg)
        summary = trainer.fit()
        train_s = summary["seconds"] - summary["eval_seconds"]
        seq_rate = tokens / train_s
        print(f"seqapp     : {seq_rate:9,.0f} tok/s ({train_s:.1f} s training, {summary['seconds']:.1f} s with "
              f"validation and checkpoints)")
        print(f"ratio      : {seq_rate / plain_rate:.3f}")

        plain_loss, seq_loss = stream_loss(plain, task.val_ids), stream_loss(trainer.model, task.val_ids)
        print(f"val loss (one stream, nats/char): plain {plain_loss:.4f}, seqapp {seq_loss:.4f} "
              f"({seq_loss / math.log(2):.4f} bpc)")

        plain_gen = plain_generate_rate(plain)
        start = time.perf_counter()
        generate(trainer.model, task.tokenizer, "\n", args.gen_chars, 0.8, seed=1)
        seq_gen = args.gen_chars / (time.perf_counter() - start)
        print(f"generation : seqapp {seq_gen:,.0f} chars/s, plain nn.LSTM loop {plain_gen:,.0f} chars/s "
              f"({seq_gen / plain_gen:.1f}x)")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(plain_tok_s=plain_rate, seqapp_tok_s=seq_rate,
                                                   ratio=seq_rate / plain_rate, plain_val=plain_loss,
                                                   seqapp_val=seq_loss, seqapp_gen=seq_gen, plain_gen=plain_gen)))


if __name__ == "__main__":
    main()
