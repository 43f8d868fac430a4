"""Real-time factor of streaming keyword spotting, one stream on one CPU thread, fed as a live stream is (in
20-100 ms chunks), beside the clip model re-scored on a sliding one-second window every 100 ms.

    python bench/speech/stream_rtf.py [--checkpoint runs/kws_stream/best.pt] [--seconds 60]

Compute does not depend on the weights: without a checkpoint both models are the presets' architectures,
freshly initialised. Prints seconds of compute per second of audio (the real-time factor) and the ratio, in
PyTorch and, both models exported with `seqapp export`, in onnxruntime."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from seqapp import checkpoint  # noqa: E402
from seqapp.speech.listening.decision import DecisionConfig  # noqa: E402
from seqapp.speech.settings import KWSConfig, build_model, model_from_checkpoint  # noqa: E402
from seqapp.speech.listening.spotter import Spotter, run_stream  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def preset(name: str) -> KWSConfig:
    return KWSConfig.from_dict(json.loads((ROOT / "configs" / name).read_text()))


def streaming_rtf(model, names, wave: np.ndarray, chunk_ms: int) -> float:
    chunk = 16 * chunk_ms
    blocks = [wave[i: i + chunk] for i in range(0, len(wave), chunk)]
    run_stream(Spotter(model, names, DecisionConfig()), blocks[: 20])  # warm-up
    started = time.perf_counter()
    run_stream(Spotter(model, names, DecisionConfig()), blocks)
    return (time.perf_counter() - started) / (len(wave) / 16000)


@torch.inference_mode()
def sliding_window_rtf(model, wave: np.ndarray, hop_ms: int = 100, batch: int = 1) -> float:
    """The clip model on the last second, every hop_ms; `batch` windows per call (batched offline scoring)."""
    x = torch.from_numpy(wave)
    starts = list(range(0, len(wave) - 16000 + 1, 16 * hop_ms))
    model(x[None, :16000])  # warm-up
    started = time.perf_counter()
    for i in range(0, len(starts), batch):
        model(torch.stack([x[s: s + 16000] for s in starts[i: i + batch]]))
    return (time.perf_counter() - started) / (len(wave) / 16000)


def onnx_rows(stream_model, clip_model, wave: np.ndarray) -> dict:
    """Both models exported (seqapp export) and run in onnxruntime on one thread: the streaming chunk step
    over the recording, and the clip graph on the last second every 100 ms."""
    import tempfile
    from dataclasses import asdict

    from seqapp.cli import main as seqapp_main
    from seqapp.onnx_export import session
    from seqapp.speech.data.dataset import class_names
    from seqapp.speech.listening.runtime import OnnxSpotter

    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name, model, cfg in (("stream", stream_model, "kws_stream.json"), ("clip", clip_model, "kws_cpu.json")):
            ckpt, paths[name] = Path(tmp) / f"{name}.pt", Path(tmp) / f"{name}.onnx"
            checkpoint.save({"task": "kws", "model": model.state_dict(),
                             "task_state": {"config": asdict(preset(cfg)), "labels": class_names(12)}}, ckpt)
            assert seqapp_main(["export", "--checkpoint", str(ckpt), "--out", str(paths[name])]) == 0
        spotter = OnnxSpotter(paths["stream"])
        steps_ms = spotter.meta["advance_samples"] / 16
        started = time.perf_counter()
        for _ in spotter.posteriors(wave[i: i + 1600] for i in range(0, len(wave), 1600)):
            pass
        rows[f"onnxruntime: streaming chunk step ({steps_ms:.0f} ms), 1 thread"] = (
            (time.perf_counter() - started) / (len(wave) / 16000))
        clip = session(paths["clip"])
        starts = range(0, len(wave) - 16000 + 1, 1600)
        started = time.perf_counter()
        for s in starts:
            clip.run(None, {"wave": wave[None, s: s + 16000]})
        rows["onnxruntime: sliding 1 s window every 100 ms, 1 thread"] = (time.perf_counter() - started) / (len(wave) / 16000)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="a streaming checkpoint (default: the preset, untrained)")
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    torch.manual_seed(0)
    wave = (0.05 * np.random.default_rng(0).standard_normal(int(args.seconds * 16000))).astype(np.float32)
    if args.checkpoint:
        stream_model, names = model_from_checkpoint(checkpoint.load(args.checkpoint, task="kws"))
    else:
        stream_model, names = build_model(preset("kws_stream.json")).eval(), None
        from seqapp.speech.data.dataset import class_names
        names = class_names(12)
    clip_model = build_model(preset("kws_cpu.json")).eval()
    params = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    print(f"torch {torch.__version__}; streaming model {params(stream_model):,} parameters, clip model "
          f"{params(clip_model):,}; {args.seconds:.0f} s of audio")
    torch.set_num_threads(1)
    rows = {}
    for chunk_ms in (20, 50, 100):
        rows[f"streaming, {chunk_ms} ms chunks, 1 thread"] = streaming_rtf(stream_model, names, wave, chunk_ms)
    rows["sliding 1 s window every 100 ms, 1 thread"] = sliding_window_rtf(clip_model, wave)
    torch.set_num_threads(2)
    rows["sliding 1 s window every 100 ms, 2 threads, batched 64"] = sliding_window_rtf(clip_model, wave, batch=64)
    torch.set_num_threads(1)
    rows.update(onnx_rows(stream_model, clip_model, wave))
    stream_rtf = rows["streaming, 100 ms chunks, 1 thread"]
    print(f"{'':58} {'RTF':>8} {'x real time':>11} {'vs streaming (100 ms)':>22}")
    for name, rtf in rows.items():
        print(f"{name:58} {rtf:8.4f} {1 / rtf:11.0f} {rtf / stream_rtf:21.1f}x")


if __name__ == "__main__":
    main()
