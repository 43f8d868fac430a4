"""Sampling speed of a 2-layer LSTM language model, every backend side by side in one process: a plain stateful
nn.LSTM loop, seqapp's torch backend (fused single-step cells), its numpy backend, and the exported step in
onnxruntime (fp32 and int8). Characters per second for 1, 8 and 64 streams; model file sizes.

    python bench/lm/generate_speed.py [--hidden 256 512] [--streams 1 8 64] [--json out.json]

Speed does not depend on the weights, so the models are freshly initialised (vocabulary 65, as Tiny
Shakespeare's). Each cell of the table makes the same number of tokens per stream with temperature 0.8."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from seqapp import checkpoint  # noqa: E402
from seqapp.cli import main as seqapp_main  # noqa: E402
from seqapp.onnx_export import session  # noqa: E402
from seqapp.text.generate import generate_many, sample  # noqa: E402
from seqapp.text.model import LanguageModel  # noqa: E402
from seqapp.text.task import LMConfig, model_config  # noqa: E402
from seqapp.text.tokenizer import CharTokenizer  # noqa: E402

VOCAB = "\n" + "".join(chr(c) for c in range(32, 95))  # 64 characters + the unknown id: 65 ids


def plain_loop(model, streams: int, length: int) -> float:
    """What a reader would write first: nn.LSTM called on one token at a time, state carried."""
    g = torch.Generator().manual_seed(1)
    tokens, state = torch.zeros(streams, dtype=torch.long), None
    with torch.inference_mode():
        started = time.perf_counter()
        for _ in range(length):
            out, state = model.encoder.rnn(model.embed(tokens)[:, None], state)
            probs = torch.softmax(model.head(out[:, 0]) / 0.8, dim=-1)
            tokens = torch.multinomial(probs, 1, generator=g)[:, 0]
        return time.perf_counter() - started


def seqapp_backend(model, tokenizer, backend: str, streams: int, length: int) -> float:
    """The time `length` more tokens take: runs of 2 * length and length, subtracted, so the set-up (reading the
    prompt through nn.LSTM, whose first call builds oneDNN's kernels; copying the weights) is left out."""
    def run(n: int) -> float:
        started = time.perf_counter()
        generate_many(model, tokenizer, "\n", n, 0.8, seed=1, num_samples=streams, backend=backend)
        return time.perf_counter() - started
    return run(2 * length) - run(length)


def onnx_loop(path: Path, streams: int, length: int) -> float:
    sess = session(path)
    names = [i.name for i in sess.get_inputs()]
    layers_hidden = sess.get_inputs()[1].shape  # (layers, batch, hidden)
    state = {n: np.zeros((layers_hidden[0], streams, layers_hidden[2]), np.float32) for n in names[1:]}
    rng, tokens = np.random.default_rng(1), np.zeros(streams, np.int64)
    started = time.perf_counter()
    for _ in range(length):
        logits, *new = sess.run(None, {"tokens": tokens, **state})
        state = dict(zip(names[1:], new))
        tokens = sample(logits, 0.8, None, None, rng)
    return time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 512])
    p.add_argument("--streams", type=int, nargs="+", default=[1, 8, 64])
    p.add_argument("--tokens", type=int, default=3000, help="tokens per stream for one stream (fewer for more)")
    p.add_argument("--json")
    args = p.parse_args()
    tokenizer, rows = CharTokenizer(VOCAB), []
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; onnxruntime on 1 thread")
    with tempfile.TemporaryDirectory() as tmp:
        for hidden in args.hidden:
            torch.manual_seed(0)
            cfg = LMConfig(hidden=hidden, layers=2, cell="lstm")
            model = LanguageModel(model_config(cfg, tokenizer.vocab_size)).eval()
            ckpt = Path(tmp) / f"lm{hidden}.pt"
            checkpoint.save({"task": "lm", "task_state": {"config": asdict(cfg), "tokenizer": tokenizer.state()},
                             "model": model.state_dict()}, ckpt)
            files = {}
            for kind, flags in (("fp32", []), ("int8", ["--int8"])):
                files[kind] = Path(tmp) / f"lm{hidden}_{kind}.onnx"
                assert seqapp_main(["export", "--checkpoint", str(ckpt), "--out", str(files[kind]), *flags]) == 0
            sizes = {k: round(f.stat().st_size / 1e6, 2) for k, f in files.items()}
            print(f"\n2x{hidden} LSTM: checkpoint weights {ckpt.stat().st_size / 1e6:.2f} MB, ONNX fp32 "
                  f"{sizes['fp32']} MB, int8 {sizes['int8']} MB")
            print(f"{'streams':>7} {'plain nn.LSTM':>14} {'seqapp torch':>13} {'seqapp numpy':>13} "
                  f"{'ORT fp32':>9} {'ORT int8':>9}   (characters/s)")
            for streams in args.streams:
                length = max(100, args.tokens // max(1, streams // 4))
                runs = {"plain_lstm": lambda: plain_loop(model, streams, length),
                        "torch": lambda: seqapp_backend(model, tokenizer, "torch", streams, length),
                        "numpy": lambda: seqapp_backend(model, tokenizer, "numpy", streams, length),
                        "onnx_fp32": lambda: onnx_loop(files["fp32"], streams, length),
                        "onnx_int8": lambda: onnx_loop(files["int8"], streams, length)}
                speeds = {name: streams * length / min(run(), run()) for name, run in runs.items()}  # best of 2
                rows.append({"hidden": hidden, "streams": streams, "tokens": length, **speeds, "sizes_mb": sizes})
                print(f"{streams:>7} " + " ".join(f"{speeds[k]:>{w},.0f}" for k, w in
                                                  zip(runs, (14, 13, 13, 9, 9))), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
