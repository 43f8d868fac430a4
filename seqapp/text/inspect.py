"""Gates and cells of a trained LM (Karpathy, Johnson & Fei-Fei 2015, "Visualizing and Understanding Recurrent
Networks"): how often each gate unit is saturated, and a page that colours text by a few cells.

nn.LSTM / nn.GRU do not expose their gates, so they are recomputed here from the encoder's own weights, one
step at a time, in PyTorch's gate order (LSTM: input, forget, cell, output; GRU: reset, update, new). The
hidden states this produces equal the fused module's outputs (tests/study/test_gated.py checks it)."""
from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import torch

GATES = {"lstm": ("input", "forget", "output"), "gru": ("reset", "update")}
LEFT, RIGHT = 0.1, 0.9


@torch.no_grad()
def unroll(encoder, x: torch.Tensor) -> list[dict[str, np.ndarray]]:
    """x (time, features) -> per layer {gate name: (time, hidden), "cell": (time, hidden), "h": (time, hidden)}."""
    cell = encoder.config.cell
    if cell not in GATES:
        raise ValueError(f"{cell} has no gates")
    rnn, layers = encoder.rnn, []
    for layer in range(encoder.config.layers):
        w_ih, w_hh, b_ih, b_hh = (getattr(rnn, f"{n}_l{layer}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        h = x.new_zeros(encoder.config.hidden)
        c = x.new_zeros(encoder.config.hidden)
        record: dict[str, list] = {name: [] for name in (*GATES[cell], "cell", "h")}
        for xt in x:
            gi, gh = w_ih @ xt + b_ih, w_hh @ h + b_hh
            if cell == "lstm":
                i, f, g, o = (gi + gh).chunk(4)
                i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
                c = f * c + i * g
                h = o * c.tanh()
                values = {"input": i, "forget": f, "output": o, "cell": c, "h": h}
            else:
                ir, iz, in_ = gi.chunk(3)
                hr, hz, hn = gh.chunk(3)
                r, z = (ir + hr).sigmoid(), (iz + hz).sigmoid()
                n = (in_ + r * hn).tanh()
                h = (1 - z) * n + z * h
                values = {"reset": r, "update": z, "cell": h, "h": h}
            for name, value in values.items():
                record[name].append(value.clone())
        layers.append({name: torch.stack(v).numpy() for name, v in record.items()})
        x = torch.stack(record["h"])
    return layers


def saturation(gate: np.ndarray, left: float = LEFT, right: float = RIGHT) -> tuple[np.ndarray, np.ndarray]:
    """gate (time, units) -> the fraction of time each unit is left-saturated (< left) and right-saturated (> right)."""
    return (gate < left).mean(axis=0), (gate > right).mean(axis=0)


def plot_saturation(layers: list[dict], cell: str, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gates = GATES[cell]
    fig, axes = plt.subplots(1, len(gates), figsize=(3.6 * len(gates), 3.6), squeeze=False)
    for ax, gate in zip(axes[0], gates):
        for i, layer in enumerate(layers):
            lo, hi = saturation(layer[gate])
            ax.scatter(lo, hi, s=8, alpha=0.6, label=f"layer {i + 1}")
        ax.plot([0, 1], [1, 0], color="grey", lw=0.5)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel(f"fraction of time < {LEFT}")
        ax.set_ylabel(f"fraction of time > {RIGHT}")
        ax.set_title(f"{gate} gate", fontsize=9)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def position_in_line(text: str) -> np.ndarray:
    positions, p = [], 0
    for ch in text:
        positions.append(p)
        p = 0 if ch == "\n" else p + 1
    return np.array(positions, dtype=np.float64)


def choose_cells(cells: np.ndarray, text: str, count: int = 3) -> list[tuple[int, str]]:
    """The rule: the cell whose activation correlates most with the position in the line, then the `count`
    most variable other cells (largest standard deviation of tanh(cell) over the text)."""
    values = np.tanh(cells)
    pos = position_in_line(text)
    std = values.std(axis=0)
    corr = np.nan_to_num(np.array([abs(np.corrcoef(values[:, j], pos)[0, 1]) if std[j] > 0 else 0.0
                                   for j in range(values.shape[1])]))
    line_cell = int(corr.argmax())
    chosen = [(line_cell, f"cell {line_cell}: most correlated with the position in the line (|r| = {corr[line_cell]:.2f})")]
    for j in np.argsort(-std):
        if len(chosen) > count:
            break
        if j != line_cell:
            chosen.append((int(j), f"cell {j}: among the most variable (std of tanh = {std[j]:.2f})"))
    return chosen


def colour(v: float) -> str:
    """-1 blue, 0 white, +1 red."""
    fade = int(255 * (1 - abs(v)))
    return f"rgb(255,{fade},{fade})" if v > 0 else f"rgb({fade},{fade},255)"


def write_html(text: str, cells: np.ndarray, chosen: list[tuple[int, str]], path: Path, title: str) -> None:
    """Each chosen cell: the text with every character's background coloured by tanh(cell) (blue -1, red +1)."""
    parts = [f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
             "pre{font-family:monospace;white-space:pre-wrap;line-height:1.5}</style>",
             f"<h1>{html.escape(title)}</h1><p>Background: tanh(cell) after each character is read, "
             "blue for -1, white for 0, red for +1.</p>"]
    values = np.tanh(cells)
    for j, why in chosen:
        spans = [f"<span style='background:{colour(v)}'>{'&#8629;' + chr(10) if ch == chr(10) else html.escape(ch)}</span>"
                 for ch, v in zip(text, values[:, j])]
        parts.append(f"<h2>{html.escape(why)}</h2><pre>{''.join(spans)}</pre>")
    path.write_text("\n".join(parts), encoding="utf-8")
