"""The language model as an ONNX step: token ids and the recurrent state in, logits and the new state out
(batch free, one token per stream). The tokenizer's tables travel in the metadata, so a runtime needs
nothing else (examples/generate_onnx.py)."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..onnx_export import unrolled_for_int8, write_onnx
from .task import model_from_checkpoint


class LMStep(nn.Module):
    """One token through nn.LSTM/GRU/RNN on a length-1 sequence: LSTM and GRU become ONNX's own ops. With
    `unrolled`, through the encoder's single-step cells instead: plain matrix products, which onnxruntime can
    quantize where it has no int8 GRU op."""

    def __init__(self, model, unrolled: bool = False):
        super().__init__()
        self.model, self.unrolled = model, unrolled

    def forward(self, tokens, h, c=None):
        state = h if c is None else (h, c)
        if self.unrolled:
            logits, state = self.model.step(tokens, state)
        else:
            out, state = self.model.encoder(self.model.embed(tokens)[:, None], state=state)
            logits = self.model.head(out[:, 0])
        return (logits, *state) if isinstance(state, tuple) else (logits, state)


def tokenizer_tables(tokenizer) -> dict:
    if tokenizer.kind == "char":
        return {"kind": "char", "chars": tokenizer.chars, "unknown_id": tokenizer.unk_id}
    sp = tokenizer.sp
    return {"kind": "sentencepiece", "space": "\u2581",
            "pieces": [sp.id_to_piece(i) for i in range(sp.get_piece_size())],
            "byte_ids": [i for i in range(sp.get_piece_size()) if sp.is_byte(i)],
            "control_ids": [i for i in range(sp.get_piece_size()) if sp.is_control(i)],
            "unknown_id": sp.unk_id(), "unknown_text": " \u2047 "}  # what SentencePiece decodes <unk> as


def example_inputs(model, batch: int, seed: int = 0) -> tuple:
    cfg = model.encoder.config
    g = torch.Generator().manual_seed(seed)
    state = [torch.randn(cfg.layers, batch, cfg.hidden, generator=g) for _ in range(2 if cfg.cell == "lstm" else 1)]
    return (torch.randint(0, model.cfg.vocab_size, (batch,), generator=g), *state)


def export_lm(ckpt: dict, out: Path, int8: bool, final: Path | None = None, weights: str = "float32") -> list[str]:
    model, tokenizer = model_from_checkpoint(ckpt)
    cfg = model.encoder.config
    names = ["tokens", "h"] + (["c"] if cfg.cell == "lstm" else [])
    outputs = ["logits", "h_out"] + (["c_out"] if cfg.cell == "lstm" else [])
    metadata = {"task": "lm", "graph": "step", "cell": cfg.cell, "layers": cfg.layers, "hidden": cfg.hidden,
                "vocab_size": model.cfg.vocab_size, "inputs": names, "outputs": outputs,
                "tokenizer": tokenizer_tables(tokenizer)}
    unrolled = unrolled_for_int8(cfg.cell, int8)
    dynamic = {name: {0 if name == "tokens" else 1: "batch"} for name in names}
    diff = write_onnx(LMStep(model, unrolled), lambda batch: example_inputs(model, batch, seed=batch), out, names,
                      outputs, metadata, int8, dynamic, weights=weights)
    native = f"ONNX's own {cfg.cell.upper()} op" if cfg.cell in ("lstm", "gru") and not unrolled else \
        "its matrix products (onnxruntime has no int8 GRU op)" if unrolled else \
        "MatMul and Tanh/Relu (PyTorch's exporter unrolls nn.RNN instead of using ONNX's RNN op)"
    lines = [f"largest logit/state difference from PyTorch: {diff:.1e}",
             f"a {cfg.layers}x{cfg.hidden} {cfg.cell} step as {native}; tokenizer ({tokenizer.kind}) in the metadata"]
    return lines + ["run it: python examples/generate_onnx.py {out} --prompt \"ROMEO:\" --length 500"]

