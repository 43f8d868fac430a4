"""The keyword spotters as ONNX graphs, front end inside (torchaudio's mel filterbank over ONNX's STFT).

- a clip model: one-second 16 kHz clips (batch free) -> logits over its labels;
- a streaming model: a fixed chunk of encoder steps (default_chunk_steps: 100 ms of log-mel, 240 ms of the
  embedding) -> their posteriors, with the encoder state in and out (and the embedding's, `ear`: the chunk then
  reads only its new mel frames, embedding.stream_chunks). The chunk's samples are exactly the frames it
  completes: a runtime puts `lead_samples` zeros before the stream, keeps a sample buffer, runs the graph whenever
  `chunk_samples` are there and drops the first `advance_samples`; the first `warmup_calls` calls only fill the
  ear: their posteriors are dropped and every other state starts from zeros after them. So the frames (and
  posteriors) are SpotterStream's (examples/spot_stream_onnx.py)."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from ...onnx_export import share_weights, unrolled_for_int8, write_onnx
from ..data.audio import SAMPLE_RATE
from ..data.dataset import SILENCE, UNKNOWN
from ..models.embedding import stream_chunks
from ..models.spotters import StreamingSpotter
from .runtime import FORMAT, shared_weights_path

CHUNK_SECONDS = 0.1  # log-mel: per-call overhead is paid about 10 times a second (5 steps of 20 ms)
# The embedding: a call computes only its new vectors (the ear is carried), but pays a fixed overhead that a chunk of
# several vectors pays once, at up to 80 ms of waiting for each vector after the first. Measured on test20 with the
# verifier (bench/speech/chunk_steps.py): RTF 0.0087 / 0.0069 / 0.0060 / 0.0058 for 1 / 2 / 3 / 4 vectors a call
EMBEDDING_CHUNK_STEPS = 3


def default_chunk_steps(model: StreamingSpotter) -> int:
    if model.frontend.cfg.features == "embedding":
        return EMBEDDING_CHUNK_STEPS
    return max(1, round(CHUNK_SECONDS / model.step_seconds))


class ClipGraph(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, wave):
        return self.model.clip_logits(wave)


class ChunkGraph(nn.Module):
    """With `unrolled`, the encoder runs as chunk_steps single steps (plain matrix products, which onnxruntime
    can quantize where it has no int8 GRU op) instead of one nn.GRU/LSTM call."""

    def __init__(self, model: StreamingSpotter, unrolled: bool = False):
        super().__init__()
        self.model, self.unrolled = model, unrolled

    def forward(self, samples, s0, s1=None, s2=None):  # the states named in export_kws: ear, h, c (those it has)
        fe, ear, state = self.model.frontend, None, tuple(s for s in (s0, s1, s2) if s is not None)
        if carries_ear(self.model):
            raw, ear = fe.transform.step(samples, state[0])
            state = state[1:]
        else:
            raw = fe.raw_features(samples)
        state = state[0] if len(state) == 1 else state
        features = fe.stack(fe.normalise(raw))
        if self.unrolled:
            outs = []
            for t in range(features.shape[1]):
                out, state = self.model.encoder.step(features[:, t], state)
                outs.append(out)
            logits = self.model.classifier(torch.stack(outs, dim=1))
        else:
            logits, state = self.model.classify(features, state)
        probs = torch.softmax(logits, dim=-1)
        return (probs, *([] if ear is None else [ear]), *(state if isinstance(state, tuple) else [state]))


def carries_ear(model: StreamingSpotter) -> bool:
    return model.frontend.cfg.features == "embedding"


def chunk_sizes(model: StreamingSpotter, steps: int) -> tuple[int, int, int, int]:
    """(samples a chunk of `steps` encoder steps reads, samples it moves on by, zero samples before the stream,
    warm-up calls)."""
    fe = model.frontend
    if carries_ear(model):
        return stream_chunks(steps)
    frames = steps * fe.cfg.frame_stack
    return (frames - 1) * fe.hop + fe.n_fft, frames * fe.hop, 0, 0


def verifier_path(final: Path) -> Path:
    """Where a bundle's verifier graph goes: beside the streaming graph, `NAME.verifier.onnx`."""
    return final.with_name(final.stem + ".verifier.onnx")


def export_kws(ckpt: dict, out: Path, int8: bool, final: Path | None = None, weights: str = "float32",
               steps: int | None = None) -> list[str]:
    """A clip model, a streaming model, or a bundle: its streaming graph at `out` (`steps` encoder steps a call,
    default_chunk_steps by default), and for a bundle its verifier's clip graph beside the final name
    (verifier_path, named in the streaming graph's metadata) and the weights both graphs hold, stored once
    (shared_weights_path)."""
    from ... import checkpoint

    final = final or out
    if not ckpt.get("verifier"):
        return export_graph(ckpt, out, int8, final, weights, steps)
    clip, shared = verifier_path(final), shared_weights_path(final)
    with checkpoint.replaced_when_done(clip) as clip_out:
        clip_lines = export_graph({"task": "kws", **ckpt["verifier"]}, clip_out, int8, weights=weights)
        lines = export_graph(ckpt, out, int8, final, weights, steps)
        with checkpoint.replaced_when_done(shared) as shared_out:
            shared_out.write_bytes(share_weights([out, clip_out], shared.name))
    sizes = [path.stat().st_size / 1e6 for path in (out, clip, shared)]
    return lines[:-1] + [f"the verifier (second stage): {clip} ({sizes[1]:.2f} MB), {clip_lines[1]}",
                         f"the weights both hold (the front end's): {shared} ({sizes[2]:.2f} MB)",
                         f"the spotter's three files: {sum(sizes):.2f} MB", lines[-1]]


def export_graph(ckpt: dict, out: Path, int8: bool, final: Path | None = None, weights: str = "float32",
                 steps: int | None = None) -> list[str]:
    """One graph: a clip model's, or a streaming model's (a bundle's first stage)."""
    from .spotter import spotter_from_checkpoint
    from ..settings import model_from_checkpoint

    final = final or out
    model, labels = model_from_checkpoint(ckpt)
    cfg, fe = model.encoder.config, model.frontend
    g = torch.Generator().manual_seed(0)
    common = {"task": "kws", "labels": labels, "keywords": [name not in (SILENCE, UNKNOWN) for name in labels],
              "sample_rate": SAMPLE_RATE, "cell": cfg.cell, "layers": cfg.layers, "hidden": cfg.hidden}
    if isinstance(model, StreamingSpotter):
        steps = steps or default_chunk_steps(model)
        read, advance, lead, warmup = chunk_sizes(model, steps)
        window = model.cfg.window  # a window head carries its last steps' features, not the encoder's state
        ear = ["ear"] if carries_ear(model) else []
        names = ["samples", *ear, "h"] + (["c"] if cfg.cell == "lstm" and not window else [])
        outputs = [name + "_out" if name != "samples" else "probs" for name in names]
        shapes = {"ear": lambda batch: (batch, fe.transform.carried_size()),
                  "h": lambda batch: ((batch, window - 1, fe.n_features) if window else (cfg.layers, batch, cfg.hidden)),
                  "c": lambda batch: (cfg.layers, batch, cfg.hidden)}
        decision = spotter_from_checkpoint(ckpt).decision  # the operating point users get by default
        metadata = {**common, "graph": "stream_chunk", "format": FORMAT, "inputs": names, "outputs": outputs,
                    "chunk_samples": read, "advance_samples": advance, "lead_samples": lead, "warmup_calls": warmup,
                    "steps_per_chunk": steps,
                    "frame_stack": fe.cfg.frame_stack, "hop": fe.hop, "n_fft": fe.n_fft,
                    "step_seconds": model.step_seconds, "decision": asdict(decision),
                    "state_shapes": [list(shapes[name](1)) for name in names[1:]]}
        if ckpt.get("verifier"):
            from .spotter import VERIFY_ENDS_S

            metadata.update(verifier=verifier_path(final).name, verify_ends_s=list(VERIFY_ENDS_S))
        graph = ChunkGraph(model, unrolled=unrolled_for_int8(cfg.cell, int8) and not window)
        example = lambda batch: (0.1 * torch.randn(batch, read, generator=g),  # noqa: E731
                                 *[torch.randn(*shapes[name](batch), generator=g) for name in names[1:]])
        dynamic = {name: {0 if name in ("samples", "ear") or window else 1: "batch"} for name in names}
        what = (f"a {steps}-step chunk ({advance / SAMPLE_RATE * 1000:.0f} ms) with "
                + (f"its last {window - 1} steps' features" if window else f"its {cfg.cell} state")
                + (" and the embedding's last frames" if ear else ""))
        run = "python examples/spot_stream_onnx.py {out} recording.wav"
    else:
        names, outputs = ["wave"], ["logits"]
        metadata = {**common, "graph": "clip", "inputs": names, "outputs": outputs, "clip_samples": SAMPLE_RATE}
        graph = ClipGraph(model)
        example = lambda batch: (0.1 * torch.randn(batch, SAMPLE_RATE, generator=g),)  # noqa: E731
        dynamic = {"wave": {0: "batch"}}
        what = "one-second clips, front end inside"
        run = "onnxruntime: session.run(None, {'wave': clips})  # (batch, 16000) float32 at 16 kHz"
    # the front end stays float: one int8 scale would flatten a filterbank's quiet bands (and MFCC's DCT); the
    # embedding's DFT and convolutions too
    front_end = ((fe.n_fft // 2 + 1, fe.cfg.n_mels), (fe.cfg.n_mels, fe.cfg.n_mels)) + tuple(
        tuple(w.shape) for w in [*fe.transform.buffers(), *fe.transform.parameters()]
        if fe.cfg.features == "embedding")
    diff = write_onnx(graph, example, out, names, outputs, metadata, int8, dynamic, float_weights=front_end,
                      weights=weights)
    lines = [f"largest difference from PyTorch: {diff:.1e}",
             f"{len(labels)} labels; {what}; a {cfg.layers}x{cfg.hidden} {cfg.cell}"
             + (" (unrolled to MatMul and Tanh/Relu: PyTorch's exporter does not use ONNX's RNN op)"
                if cfg.cell.startswith("rnn") else "")]
    if int8 and cfg.cell == "gru":
        lines.append("onnxruntime has no int8 GRU op: " + ("the chunk's GRU steps are exported as matrix products, "
                     "which are int8" if isinstance(model, StreamingSpotter) and not model.cfg.window
                     else "the GRU stays float"))
    return lines + [f"run it: {run}"]
