"""Gradient flow: the norm of dL/dh_{T-k} and dL/dx_{T-k} against the distance k, relative to k = 0 (Pascanu
et al. 2013; Arjovsky et al. 2016, Fig. 4). The fused nn.LSTM hides h_t from autograd, so the same weights are
unrolled one step at a time (RecurrentEncoder.step), in float64: the ratios reach 1e-30 and below, where float32
underflows."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch


def gradient_by_distance(model, x: torch.Tensor, loss_fn) -> dict:
    """{"h": ratios, "x": ratios}, index k = distance from the last step, each relative to k = 0. `model` has
    .encoder (a RecurrentEncoder) and .read_out(outputs (batch, time, hidden)); loss_fn(predictions) -> loss."""
    model = copy.deepcopy(model).double().eval()
    x = x.double().clone().requires_grad_(True)
    state, outputs = None, []
    for t in range(x.shape[1]):
        out, state = model.encoder.step(x[:, t], state)
        out.retain_grad()
        outputs.append(out)
    loss_fn(model.read_out(torch.stack(outputs, dim=1))).backward()
    h = np.array([o.grad.norm().item() for o in outputs])[::-1]
    xs = x.grad.norm(dim=(0, 2)).numpy()[::-1]
    return {"h": relative(h), "x": relative(xs)}


def init_and_trained(cfg, trained=None, batch: int = 64) -> dict:
    """{"initialization": ratios, ["trained": ratios]} for a synth config: the model at the initial weights its
    training run started from (same seed), and the trained one if given, on the same fixed batch."""
    import torch.nn.functional as F

    from .task import SynthTask

    task = SynthTask(cfg)
    torch.manual_seed(cfg.seed)
    fresh = task.build_model()
    x, y = task.make(np.random.default_rng([cfg.seed, 2**32]), batch, cfg.length)
    if cfg.problem == "adding":
        loss_fn = lambda out: F.mse_loss(out, y.double())  # noqa: E731
    else:
        loss_fn = lambda out: F.cross_entropy(out.flatten(0, 1), y.flatten())  # noqa: E731
    curves = {"initialization": gradient_by_distance(fresh, x, loss_fn)}
    if trained is not None:
        curves["trained"] = gradient_by_distance(trained, x, loss_fn)
    return curves


def relative(norms: np.ndarray) -> np.ndarray:
    return norms / norms[0] if norms[0] > 0 else norms


def plot_gradients(curves: dict[str, np.ndarray], png: Path, title: str = "") -> None:
    """curves: label -> ratios by distance; a log axis, as the vanishing gradient is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for label, ratios in curves.items():
        k = np.arange(len(ratios))
        keep = ratios > 0
        ax.semilogy(k[keep], ratios[keep], label=label, linestyle="--" if "init" in label else "-")
    ax.set_xlabel("distance k from the loss (steps)")
    ax.set_ylabel("|dL/dh(T-k)| / |dL/dh(T)|")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
