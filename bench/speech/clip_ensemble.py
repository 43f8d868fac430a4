"""Clip checkpoints averaged: each one's accuracy on a test set, and that of their mean posteriors (an ensemble of
seeds or settings against the variance of classes with few clips).

    python bench/speech/clip_ensemble.py runs/kws/best.pt runs/kws_s2/best.pt --data data/speech_commands_test
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from seqapp import checkpoint
from seqapp.device import pick_device
from seqapp.speech.data.dataset import load_eval_set
from seqapp.speech.settings import model_from_checkpoint
from seqapp.speech.training.evaluate import predict
from seqapp.task import EvalContext


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--data", required=True, help="a canonical test-set folder or a Speech Commands folder")
    args = parser.parse_args()
    ctx = EvalContext(pick_device("cpu"), "fp32")
    models = [model_from_checkpoint(checkpoint.load(path)) for path in args.checkpoints]
    names = models[0][1]
    if any(labels != names for _, labels in models):
        raise SystemExit("the checkpoints have different classes")
    waves, labels, what = load_eval_set(args.data, names)
    truth = torch.as_tensor(labels)
    watch = [names.index(n) for n in ("on", "off") if n in names]
    probs = []
    for path, (model, _) in zip(args.checkpoints, models):
        probs.append(torch.softmax(predict(model, waves, ctx), dim=1))
        print(line(path, probs[-1], truth, names, watch))
    print(line(f"mean of {len(probs)}", torch.stack(probs).mean(0), truth, names, watch))
    print(f"{what}: {len(labels)} clips")


def line(name: str, probs: torch.Tensor, truth: torch.Tensor, names: list[str], watch: list[int]) -> str:
    hit = (probs.argmax(1) == truth).numpy()
    recall = "  ".join(f"{names[c]} {hit[truth.numpy() == c].mean():.1%}" for c in watch)
    return f"{name}: accuracy {np.mean(hit):.2%}  {recall}"


if __name__ == "__main__":
    main()
