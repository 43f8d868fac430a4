"""RecurrentEncoder: the one place the RNN is built. A thin layer over nn.RNN / nn.LSTM / nn.GRU,
so cuDNN (GPU) and oneDNN (CPU) do the work."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .errors import UserError, positive

CELLS = ("rnn_tanh", "rnn_relu", "lstm", "gru")
ONE_STEP = {"rnn_tanh": torch.rnn_tanh_cell, "rnn_relu": torch.rnn_relu_cell, "gru": torch.gru_cell,
            "lstm": torch.lstm_cell}


@dataclass
class EncoderConfig:
    input_size: int
    cell: str = "lstm"
    layers: int = 2
    hidden: int = 256
    dropout: float = 0.0
    bidirectional: bool = False
    forget_bias: float = 0.0   # LSTM only: the forget gate's initial bias (Jozefowicz et al. 2015 use 1)

    def check(self) -> "EncoderConfig":
        if self.cell not in CELLS:
            raise UserError(f"unknown cell {self.cell!r} (choose one of {', '.join(CELLS)})")
        positive("--layers", self.layers)
        positive("--hidden", self.hidden)
        positive("input size", self.input_size)
        if not 0.0 <= self.dropout < 1.0:
            raise UserError(f"--dropout must be in [0, 1), got {self.dropout}")
        return self


class RecurrentEncoder(nn.Module):
    """Input (batch, time, features), optional lengths and state; output (batch, time, hidden * directions)
    and the final state (a tensor, or an (h, c) tuple for LSTM). No caller needs to know the cell."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config.check()
        kwargs = dict(
            input_size=config.input_size,
            hidden_size=config.hidden,
            num_layers=config.layers,
            dropout=config.dropout if config.layers > 1 else 0.0,
            bidirectional=config.bidirectional,
            batch_first=True,
        )
        if config.cell == "lstm":
            self.rnn = nn.LSTM(**kwargs)
        elif config.cell == "gru":
            self.rnn = nn.GRU(**kwargs)
        else:
            self.rnn = nn.RNN(nonlinearity=config.cell.removeprefix("rnn_"), **kwargs)
        if config.cell == "lstm" and config.forget_bias:
            self.set_forget_bias(config.forget_bias)

    def set_forget_bias(self, value: float) -> None:
        """PyTorch's gates are ordered (input, forget, cell, output) and have two biases that add up: the
        input one gets `value`, the recurrent one 0."""
        h = self.config.hidden
        with torch.no_grad():
            for name, param in self.rnn.named_parameters():
                if name.startswith("bias_"):
                    param[h: 2 * h] = value if name.startswith("bias_ih") else 0.0

    @property
    def output_size(self) -> int:
        return self.config.hidden * (2 if self.config.bidirectional else 1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None, state=None):
        if lengths is None:
            return self.rnn(x, state)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, state = self.rnn(packed, state)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return out, state

    def step(self, x: torch.Tensor, state=None):
        """One time step: x (batch, features) -> (batch, hidden) and the new state, in forward()'s format.
        It runs PyTorch's fused single-step cells (torch.lstm_cell, ...) on this module's own weights: the same
        result as forward() on a length-1 sequence, several times cheaper per call on the CPU, which is what
        one-token-at-a-time generation needs. Unidirectional only."""
        if self.config.bidirectional:
            raise ValueError("step() runs forward in time only")
        lstm, cell = self.config.cell == "lstm", ONE_STEP[self.config.cell]
        if state is None:
            zeros = x.new_zeros(self.config.layers, x.shape[0], self.config.hidden)
            state = (zeros, zeros) if lstm else zeros
        hs, cs = [], []
        for layer in range(self.config.layers):
            weights = [getattr(self.rnn, f"{name}_l{layer}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            if lstm:
                h, c = cell(x, (state[0][layer], state[1][layer]), *weights)
                cs.append(c)
            else:
                h = cell(x, state[layer], *weights)
            hs.append(h)
            x = h
        return x, ((torch.stack(hs), torch.stack(cs)) if lstm else torch.stack(hs))



def hidden_for_params(budget: int, count_params) -> int:
    """The hidden size whose model has the number of parameters closest to `budget`; count_params(hidden)
    builds the task's model with that hidden size and counts (per layer a cell has g*h*(d + h + 2), g = 1 RNN,
    3 GRU, 4 LSTM, but the task's embedding and head count too)."""
    positive("--params", budget)
    low, high = 1, 1
    while count_params(high) < budget and high < 1 << 16:
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if count_params(middle) < budget else (low, middle)
    return min((low, high), key=lambda h: abs(count_params(h) - budget))


def resolve_params(cfg, build) -> None:
    """When a task config asks for `params`, set its `hidden` to the size whose model, build(config), has about
    that many parameters (every task's --params goes through here)."""
    from dataclasses import replace

    if cfg.params:
        cfg.hidden = hidden_for_params(cfg.params, lambda h: count_parameters(build(replace(cfg, hidden=h))))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
