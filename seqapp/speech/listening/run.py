"""The spotter as users run it (`seqapp spot --stream`, `listen`, `serve`): an exported one (.onnx, or the spotter
that ships inside seqapp when none is named) on onnxruntime without importing PyTorch, else a checkpoint on
PyTorch. Both run over blocks of audio the same way."""
from __future__ import annotations

from ...errors import UserError
from .runtime import OnnxSpotter, is_exported


def open_spotter(path=None, threshold: float | None = None, average_ms: float | None = None,
                 false_alarms_per_hour: float | None = None):
    """The spotter at `path` (None: the bundled one), at the operating point the flags name."""
    if is_exported(path):
        if false_alarms_per_hour is not None:
            raise UserError("an exported spotter keeps the operating point it was exported at: use --threshold, "
                            "or --false-alarms-per-hour with its checkpoint")
        return OnnxSpotter(path, threshold, average_ms)
    import torch

    from .spotter import load_spotter

    torch.set_num_threads(1)  # one stream: constant work per 10 ms, no thread hand-offs
    return load_spotter(path, threshold, average_ms, false_alarms_per_hour)


def run_spotter(spotter, blocks, on_detection=None, on_posteriors=None) -> None:
    """Feed `blocks` (16 kHz mono float32) through the spotter; `on_detection(d)` for each detection as it
    happens, `on_posteriors(times, probs)` for each block's posteriors (a live plot)."""
    if isinstance(spotter, OnnxSpotter):
        spotter.run(blocks, on_detection, on_posteriors)
        return
    from .spotter import run_stream

    run_stream(spotter, blocks, on_detection, on_posteriors=on_posteriors)
