"""The plain 2x256 LSTM loop of train_speed.py with one option changed at a time: the source of the schedule
table in docs/language_model.md. One thread per run, so two can run side by side on 2 cores.

    python bench/lm/schedule_ablation.py --data ../shared/data/tinyshakespeare/input.txt --sched wsd --decay 0.2
"""
import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.lm.train_speed import PlainLM, stream_loss  # noqa: E402
from seqapp.text.task import LMConfig, LMTask  # noqa: E402
from seqapp.trainer import lr_factor  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="data/tinyshakespeare/input.txt")
    p.add_argument("--sched", choices=["wsd", "cosine", "constant"], default="cosine")
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--decay", type=float, default=0.2, help="wsd: fraction of steps spent decaying")
    p.add_argument("--min-ratio", type=float, default=0.1)
    p.add_argument("--clip", type=float, default=1.0, help="0: no clipping")
    p.add_argument("--beta2", type=float, default=0.999)
    p.add_argument("--wd", type=float, default=0.01)
    p.add_argument("--forget-bias", type=float, default=0.0)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--seed", type=int, default=1337)
    a = p.parse_args()
    torch.set_num_threads(1)
    task = LMTask(LMConfig(data=a.data))
    torch.manual_seed(a.seed)
    model = PlainLM(task.tokenizer.vocab_size, 256, 2, 0.0)
    if a.forget_bias:
        with torch.no_grad():
            for name, prm in model.lstm.named_parameters():
                if "bias_ih" in name:
                    prm[256:512].fill_(a.forget_bias)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=a.wd, betas=(0.9, a.beta2))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, a.steps, a.warmup, a.sched, a.decay, a.min_ratio))
    data = torch.from_numpy(task.train_ids.astype("int64"))
    for _ in range(a.steps):
        ix = torch.randint(len(data) - 129, (32,))
        x = torch.stack([data[i: i + 129] for i in ix])
        logits, _ = model(x[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), x[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        if a.clip:
            nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()
        sched.step()
    print(vars(a), "val", round(stream_loss(model, task.val_ids), 4))


if __name__ == "__main__":
    main()
