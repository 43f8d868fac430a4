"""The language model's one-token step in numpy, for sampling on the CPU.

A one-token PyTorch call pays a fixed cost per operator (oneDNN's is ~2 ms for nn.LSTM); a 2x256 step is
only ~0.8 M multiply-adds, so the overhead is the cost. Here the step is a few BLAS GEMVs on float32 copies of
the weights, and the first layer's input side is precomputed per token: embedding -> W_ih -> + biases is a
(vocab, gates * hidden) table, so reading a token is a row lookup. Same numbers as LanguageModel.step to
float32 rounding (tests/test_generate.py), for every cell."""
from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * np.tanh(0.5 * x) + 0.5  # no overflow for large |x|, unlike 1 / (1 + exp(-x))


class NumpyStep:
    def __init__(self, model):
        cfg = model.encoder.config
        self.cell, self.layers, self.hidden = cfg.cell, cfg.layers, cfg.hidden
        weights = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}
        rnn = lambda name, layer: weights[f"encoder.rnn.{name}_l{layer}"]  # noqa: E731
        gru = self.cell == "gru"
        # GRU keeps the recurrent bias apart: its candidate gate is tanh(W_in x + b_in + r * (W_hn h + b_hn))
        self.input_bias = [rnn("bias_ih", i) + (0 if gru else rnn("bias_hh", i)) for i in range(self.layers)]
        self.recurrent_bias = [rnn("bias_hh", i) if gru else None for i in range(self.layers)]
        self.w_ih = [np.ascontiguousarray(rnn("weight_ih", i).T) for i in range(self.layers)]
        self.w_hh = [np.ascontiguousarray(rnn("weight_hh", i).T) for i in range(self.layers)]
        self.table = weights["embed.weight"] @ self.w_ih[0] + self.input_bias[0]
        self.w_out = np.ascontiguousarray(weights["head.weight"].T)
        self.b_out = weights["head.bias"]

    def zero_state(self, batch: int) -> tuple[np.ndarray, ...]:
        zeros = np.zeros((self.layers, batch, self.hidden), dtype=np.float32)
        return (zeros, zeros.copy()) if self.cell == "lstm" else (zeros,)

    def step(self, tokens: np.ndarray, state: tuple[np.ndarray, ...]):
        """tokens (batch,) -> logits (batch, vocab) and the new state: (h,) or (h, c), each (layers, batch, hidden)."""
        hs, cs = [], []
        x_side = self.table[tokens]
        for layer in range(self.layers):
            if layer:
                x_side = hs[-1] @ self.w_ih[layer] + self.input_bias[layer]
            h_side = state[0][layer] @ self.w_hh[layer]
            if self.cell == "lstm":
                h, c = self.lstm(x_side + h_side, state[1][layer])
                cs.append(c)
            elif self.cell == "gru":
                h = self.gru(x_side, h_side + self.recurrent_bias[layer], state[0][layer])
            else:
                h = x_side + h_side
                h = np.tanh(h) if self.cell == "rnn_tanh" else np.maximum(h, 0)
            hs.append(h)
        logits = hs[-1] @ self.w_out + self.b_out
        return logits, ((np.stack(hs), np.stack(cs)) if self.cell == "lstm" else (np.stack(hs),))

    def lstm(self, gates: np.ndarray, c: np.ndarray):
        n = self.hidden  # PyTorch's order: input, forget, cell, output
        s = sigmoid(gates)  # the cell part's sigmoid is not used: cheaper than slicing around it
        c = s[:, n:2 * n] * c + s[:, :n] * np.tanh(gates[:, 2 * n:3 * n])
        return s[:, 3 * n:] * np.tanh(c), c

    def gru(self, x_side: np.ndarray, h_side: np.ndarray, h: np.ndarray):
        n = self.hidden  # PyTorch's order: reset, update, new
        rz = sigmoid(x_side[:, :2 * n] + h_side[:, :2 * n])
        new = np.tanh(x_side[:, 2 * n:] + rz[:, :n] * h_side[:, 2 * n:])
        z = rz[:, n:]
        return (1 - z) * new + z * h
