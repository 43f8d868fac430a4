"""Clip models judged: predictions, accuracy, per-class precision/recall/F1, the confusion matrix and its picture."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ... import checkpoint
from ...device import autocast, pick_device
from ...task import EvalContext
from ..data.audio import load_audio
from ..data.dataset import load_eval_set
from ..settings import model_from_checkpoint


@torch.no_grad()
def predict(model, waves: torch.Tensor, ctx: EvalContext, batch_size: int = 256) -> torch.Tensor:
    """Logits for every clip, in batches on the device."""
    model.eval()
    out = []
    for i in range(0, len(waves), batch_size):
        with autocast(ctx.device, ctx.precision):
            out.append(model.clip_logits(waves[i: i + batch_size].to(ctx.device)).float())
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


def plot_confusion(confusion, names: list[str], png: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.asarray(confusion, dtype=np.float64)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = max(5.0, 0.45 * len(names) + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("truth")
    if len(names) <= 15:
        for i in range(len(names)):
            for j in range(len(names)):
                if counts[i, j]:
                    ax.text(j, i, int(counts[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if rates[i, j] > 0.5 else "black")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def evaluate_clips(checkpoint_path: str, data: str, device_name: str = "auto", out: str | None = None) -> dict:
    """`evaluate kws --data`: a clip checkpoint scored on a test set, its confusion matrix drawn beside it."""
    device = pick_device(device_name)
    model, names = model_from_checkpoint(checkpoint.load(checkpoint_path, task="kws", map_location=device))
    waves, labels, what = load_eval_set(Path(data), names)
    result = score(model.to(device), waves, labels, names, EvalContext(device, "fp32"))
    folder = Path(out) if out else Path(checkpoint_path).parent
    folder.mkdir(parents=True, exist_ok=True)
    png = folder / "confusion.png"
    plot_confusion(result["confusion"], names, png, title=f"{data} ({what}): accuracy {result['accuracy']:.1%}")
    return {"data": str(data), "set": what, **result, "confusion_png": str(png)}


@torch.no_grad()
def label_clips(checkpoint_path: str, files: list[Path], top_k: int, device_name: str = "cpu") -> list[dict]:
    """`seqapp spot FILES`: each clip's label and its top-k classes with their probabilities."""
    device = pick_device(device_name)
    model, names = model_from_checkpoint(checkpoint.load(checkpoint_path, task="kws", map_location=device))
    waves = torch.stack([load_audio(f) for f in files])
    probs = torch.softmax(model.to(device)(waves.to(device)).float(), dim=-1).cpu()
    top = probs.topk(min(top_k, len(names)), dim=-1)
    return [{"file": str(f), "label": names[int(i[0])],
             "top": [{"label": names[int(j)], "p": round(float(p), 4)} for p, j in zip(ps, i)]}
            for f, ps, i in zip(files, top.values, top.indices)]


def report_lines(result: dict) -> list[str]:
    """evaluate_clips' result for people: accuracy, per-class figures and the confusion matrix."""
    names = result["labels"]
    lines = [f"{result['data']} ({result['set']}, {result['clips']} clips): accuracy {result['accuracy']:.2%}, "
             f"macro F1 {result['macro_f1']:.3f}",
             f"{'class':>10} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>7}"]
    lines += [f"{name:>10} {c['precision']:9.3f} {c['recall']:7.3f} {c['f1']:6.3f} {c['support']:7d}"
              for name, c in result["per_class"].items()]
    width = max(len(n) for n in names)
    lines += ["confusion (rows: truth, columns: predicted)", " " * (width + 1) + " ".join(f"{n[:5]:>5}" for n in names)]
    lines += [f"{name:>{width}} " + " ".join(f"{v:5d}" for v in row) for name, row in zip(names, result["confusion"])]
    return lines + [f"confusion matrix: {result['confusion_png']}"]
