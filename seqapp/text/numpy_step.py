"""The language model's one-token step for sampling on the CPU: numpy arrays, PyTorch's matrix-vector product.

A one-token PyTorch call pays a fixed cost per operator (oneDNN's is ~2 ms for nn.LSTM); a 2x256 step is
only ~0.8 M multiply-adds, so the overhead is the cost. Here the state and the gate arithmetic are numpy
arrays (a microsecond an operation), the first layer's input side is precomputed per token (embedding ->
W_ih -> + biases is a (vocab, gates * hidden) table, so reading a token is a row lookup), and each remaining
weight matrix is one torch.mv on the checkpoint's own (gates * hidden, inputs) layout. Why torch.mv: the
weights (3 MB at 2x256) do not fit one core's L2 cache but do fit two, and PyTorch splits a matrix-vector
product's rows over its threads the same way every call; OpenBLAS (numpy's) keeps a product this small on
one thread, which then streams the weights from L3 every step (110 us against 43 us here). Same numbers as
LanguageModel.step to float32 rounding (tests/text/test_generate.py), for every cell.
"""
from __future__ import annotations

import numpy as np
import torch


def product(x: np.ndarray, weight: torch.Tensor, bias: torch.Tensor | None = None) -> np.ndarray:
    """x (batch, inputs) times weight (outputs, inputs) transposed, plus bias: what nn.Linear does."""
    if len(x) == 1:  # the case generation is slow in: one stream
        x = torch.from_numpy(x[0])
        return (torch.mv(weight, x) if bias is None else torch.addmv(bias, weight, x)).numpy()[None]
    x = torch.from_numpy(x)
    return (x @ weight.T if bias is None else torch.addmm(bias, x, weight.T)).numpy()


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
        tensor = lambda array: torch.from_numpy(np.ascontiguousarray(array))  # noqa: E731
        # The first layer's input side is the table; above it, a GRU keeps its two products apart, while LSTM
        # and RNN gates are one product: [W_ih W_hh] [x; h] + biases.
        above = range(1, self.layers)
        self.w_hh = [tensor(rnn("weight_hh", i)) for i in range(self.layers)]
        self.w_ih = {i: tensor(rnn("weight_ih", i)) for i in above if gru}
        self.w_both = {i: tensor(np.concatenate([rnn("weight_ih", i), rnn("weight_hh", i)], 1)) for i in above if not gru}
        self.b_both = [tensor(b) for b in self.input_bias]
        self.table = weights["embed.weight"] @ rnn("weight_ih", 0).T + self.input_bias[0]
        self.w_out, self.b_out = tensor(weights["head.weight"]), tensor(weights["head.bias"])

    def zero_state(self, batch: int) -> tuple[np.ndarray, ...]:
        zeros = np.zeros((self.layers, batch, self.hidden), dtype=np.float32)
        return (zeros, zeros.copy()) if self.cell == "lstm" else (zeros,)

    def step(self, tokens: np.ndarray, state: tuple[np.ndarray, ...]):
        """tokens (batch,) -> logits (batch, vocab) and the new state: (h,) or (h, c), each (layers, batch, hidden)."""
        hs, cs = [], []
        for layer in range(self.layers):
            h_prev = state[0][layer]
            if self.cell == "gru":
                x_side = self.table[tokens] if not layer else product(hs[-1], self.w_ih[layer], self.b_both[layer])
                h = self.gru(x_side, product(h_prev, self.w_hh[layer]) + self.recurrent_bias[layer], h_prev)
            else:
                if not layer:
                    gates = self.table[tokens] + product(h_prev, self.w_hh[0])
                else:
                    gates = product(np.concatenate([hs[-1], h_prev], axis=1), self.w_both[layer], self.b_both[layer])
                if self.cell == "lstm":
                    h, c = self.lstm(gates, state[1][layer])
                    cs.append(c)
                else:
                    h = np.tanh(gates) if self.cell == "rnn_tanh" else np.maximum(gates, 0)
            hs.append(h)
        logits = product(hs[-1], self.w_out, self.b_out)
        return logits, (np.array(hs), np.array(cs)) if self.cell == "lstm" else (np.array(hs),)

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
