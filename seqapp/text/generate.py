"""Stateful sampling: the prompt is read once, then one token at a time per stream with the carried state.

Two backends make the same text for a seed: "numpy" (NumpyStep: the default on the CPU, several times faster
for one stream) and "torch" (LanguageModel.step, PyTorch's fused single-step cells: any device). Both hand
their logits to one numpy sampler, which examples/generate_onnx.py copies, so an exported model samples the
same text too."""
from __future__ import annotations

import sys
from typing import TextIO

import numpy as np
import torch

from ..errors import UserError, positive

BACKENDS = ("auto", "numpy", "torch")


def sample(logits: np.ndarray, temperature: float, top_k: int | None, top_p: float | None,
           rng: np.random.Generator) -> np.ndarray:
    """logits (streams, vocab) -> one token per stream. One uniform draw per stream, inverted through the
    cumulative distribution, so any backend's logits give the same tokens for the same seed."""
    if temperature == 0:
        return np.asarray(logits).argmax(axis=-1)
    z = np.divide(logits, temperature, dtype=np.float64)
    if top_k and top_k < z.shape[-1]:
        kth = np.partition(z, -top_k, axis=-1)[:, -top_k, None]
        z = np.where(z < kth, -np.inf, z)
    probs = np.exp(z - z.max(axis=-1, keepdims=True))  # unnormalised: the draw below scales to the total
    if top_p is not None and top_p < 1.0:  # keep the smallest set of tokens whose probability reaches top_p
        probs /= probs.sum(axis=-1, keepdims=True)
        order = np.argsort(-probs, axis=-1, kind="stable")
        ranked = np.take_along_axis(probs, order, axis=-1)
        np.put_along_axis(probs, order, np.where(np.cumsum(ranked, axis=-1) - ranked > top_p, 0.0, ranked), axis=-1)
    cumulative = probs.cumsum(axis=-1)
    draw = rng.random((len(z), 1)) * cumulative[:, -1:]
    return (cumulative <= draw).sum(axis=-1)


def check_sampling(length: int, temperature: float, top_k, top_p, num_samples: int = 1) -> None:
    positive("--length", length)
    positive("--temperature", temperature, allow_zero=True)
    positive("--top-k", top_k)
    positive("--num-samples", num_samples)
    if top_p is not None and not 0 < top_p <= 1:
        raise UserError(f"--top-p must be in (0, 1], got {top_p}")


class TorchSteps:
    """LanguageModel.step on the model's device; numpy in and out."""

    def __init__(self, model, state, streams: int):
        self.model, self.device = model, next(model.parameters()).device
        expand = lambda s: s.expand(-1, streams, -1).contiguous()  # noqa: E731
        self.state = tuple(map(expand, state)) if isinstance(state, tuple) else expand(state)

    def __call__(self, tokens: np.ndarray) -> np.ndarray:
        logits, self.state = self.model.step(torch.as_tensor(tokens, device=self.device), self.state)
        return logits.float().cpu().numpy()


class NumpySteps:
    def __init__(self, model, state, streams: int):
        from .numpy_step import NumpyStep

        self.step = NumpyStep(model)
        state = state if isinstance(state, tuple) else (state,)
        self.state = tuple(np.repeat(s.float().cpu().numpy(), streams, axis=1) for s in state)

    def __call__(self, tokens: np.ndarray) -> np.ndarray:
        logits, self.state = self.step.step(tokens, self.state)
        return logits


def pick_backend(backend: str, model) -> type:
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r} (choose {', '.join(BACKENDS)})")
    on_cpu = next(model.parameters()).device.type == "cpu"
    if backend == "numpy" and not on_cpu:
        raise UserError("--backend numpy runs on the CPU: use --device cpu, or --backend torch")
    return NumpySteps if backend == "numpy" or (backend == "auto" and on_cpu) else TorchSteps


@torch.inference_mode()
def generate_many(model, tokenizer, prompt: str = "\n", length: int = 500, temperature: float = 0.8,
                  top_k: int | None = None, top_p: float | None = None, seed: int = 1, num_samples: int = 1,
                  backend: str = "auto", stream: TextIO | None = None) -> list[str]:
    """`num_samples` samples of `length` tokens after `prompt`, made side by side in one batch. With `stream`
    (one sample only), text is written as it is made."""
    check_sampling(length, temperature, top_k, top_p, num_samples)
    steps_class = pick_backend(backend, model)
    device = next(model.parameters()).device
    model.eval()
    unknown = tokenizer.unknown_in(prompt)
    if unknown:
        print(f"note: the prompt has characters the model never saw ({''.join(sorted(unknown))!r}); "
              "they are read as 'unknown'", file=sys.stderr)
    ids = tokenizer.encode(prompt or "\n").astype("int64")
    logits, state = model(torch.as_tensor(ids, device=device)[None], None)  # the prompt, read once
    logits = np.repeat(logits[:, -1].float().cpu().numpy(), num_samples, axis=0)
    steps = steps_class(model, state, num_samples)
    made = sample_loop(steps, logits, length, temperature, top_k, top_p, seed, tokenizer, stream)
    return [tokenizer.decode(row) for row in made]


def sample_loop(steps, logits, length, temperature, top_k, top_p, seed, tokenizer, stream) -> np.ndarray:
    """(streams, length) sampled tokens; with `stream` (one stream), text written as it is made."""
    num_samples = len(logits)
    rng = np.random.default_rng(seed)
    made = np.empty((num_samples, length), dtype=np.int64)
    pending: list[int] = []  # tokens not yet written: a piece may end inside a multi-byte character
    for t in range(length):
        tokens = sample(logits, temperature, top_k, top_p, rng)
        made[:, t] = tokens
        if stream is not None and num_samples == 1:
            pending.append(int(tokens[0]))
            piece = tokenizer.decode(pending)
            if not piece.endswith("\ufffd"):
                stream.write(piece)
                stream.flush()
                pending.clear()
        if t + 1 < length:
            logits = steps(tokens)
    return made


def generate(model, tokenizer, prompt: str = "\n", length: int = 500, temperature: float = 0.8,
             top_k: int | None = None, top_p: float | None = None, seed: int = 1,
             stream: TextIO | None = None, backend: str = "auto") -> str:
    """One sample (see generate_many)."""
    return generate_many(model, tokenizer, prompt, length, temperature, top_k, top_p, seed, 1, backend, stream)[0]
