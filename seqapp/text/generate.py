"""Stateful sampling: the prompt is read once, then one token at a time with the carried state
(LanguageModel.step, which runs PyTorch's fused single-step cells: on the CPU a one-token nn.LSTM call costs
several times more, most of it oneDNN's fixed cost per call)."""
from __future__ import annotations

import sys
from typing import TextIO

import torch

from ..errors import UserError, positive


def sample_next(logits: torch.Tensor, temperature: float, top_k: int | None, top_p: float | None,
                generator: torch.Generator) -> int:
    if temperature == 0:
        return int(logits.argmax())
    logits = logits / temperature
    if top_k:
        kth = torch.topk(logits, min(top_k, logits.numel())).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if top_p is not None and top_p < 1.0:
        sorted_probs, order = probs.sort(descending=True)
        outside = sorted_probs.cumsum(0) - sorted_probs > top_p  # keep the smallest set reaching top_p
        probs = probs.index_fill(0, order[outside], 0.0)
    return int(torch.multinomial(probs, 1, generator=generator))


def check_sampling(length: int, temperature: float, top_k, top_p) -> None:
    positive("--length", length)
    positive("--temperature", temperature, allow_zero=True)
    positive("--top-k", top_k)
    if top_p is not None and not 0 < top_p <= 1:
        raise UserError(f"--top-p must be in (0, 1], got {top_p}")


@torch.inference_mode()
def generate(model, tokenizer, prompt: str = "\n", length: int = 500, temperature: float = 0.8,
             top_k: int | None = None, top_p: float | None = None, seed: int = 1,
             stream: TextIO | None = None) -> str:
    """Sample `length` tokens after `prompt`; with `stream`, text is written as it is made."""
    check_sampling(length, temperature, top_k, top_p)
    device = next(model.parameters()).device
    model.eval()
    unknown = tokenizer.unknown_in(prompt)
    if unknown:
        print(f"note: the prompt has characters the model never saw ({''.join(sorted(unknown))!r}); "
              "they are read as 'unknown'", file=sys.stderr)
    ids = tokenizer.encode(prompt or "\n").astype("int64")
    generator = torch.Generator(device="cpu").manual_seed(seed)
    made: list[int] = []
    pending: list[int] = []  # tokens not yet written: a piece may end inside a multi-byte character
    logits, state = model(torch.as_tensor(ids, device=device)[None], None)  # the prompt, read once
    logits = logits[:, -1]
    for _ in range(length):
        token = sample_next(logits[0].float().cpu(), temperature, top_k, top_p, generator)
        made.append(token)
        if stream is not None:
            pending.append(token)
            piece = tokenizer.decode(pending)
            if not piece.endswith("\ufffd"):
                stream.write(piece)
                stream.flush()
                pending.clear()
        logits, state = model.step(torch.tensor([token], device=device), state)  # one token, state carried
    return tokenizer.decode(made)
