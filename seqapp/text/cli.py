"""The language model's commands: `train lm`, `evaluate lm`, `generate`."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..cli import add_encoder_flags, add_setting, add_train_and_tune, add_train_flags, prepare_run
from ..errors import UserError
from ..onnx_export import register_exporter


def register(groups, commands) -> None:
    add_train_and_tune(groups, "lm", "character / SentencePiece language model", add_lm_flags, train_lm, tune_lm)
    register_exporter("lm", "seqapp.text.export:export_lm")

    ev = groups["evaluate"].add_parser("lm")
    ev.add_argument("--checkpoint", required=True)
    ev.add_argument("--data", help="text to score (default: the text it was trained on)")
    ev.add_argument("--split", choices=["val", "all"], default="val")
    ev.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(handler=evaluate_lm)

    gen = commands.add_parser("generate", help="sample text from a language model")
    gen.add_argument("--checkpoint", required=True)
    gen.add_argument("--prompt", default="\n")
    gen.add_argument("--length", type=int, default=500)
    gen.add_argument("--temperature", type=float, default=0.8)
    gen.add_argument("--top-k", type=int)
    gen.add_argument("--top-p", type=float)
    gen.add_argument("--seed", type=int, default=1)
    gen.add_argument("--num-samples", type=int, default=1, help="this many samples, made side by side in one batch")
    gen.add_argument("--backend", choices=["auto", "numpy", "torch"], default="auto",
                     help="numpy (the CPU default: fastest for a few streams) or torch (any device); same text")
    gen.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu")
    gen.set_defaults(handler=generate_command)

    insp = commands.add_parser("inspect", help="gate saturation and cell activations of an LSTM/GRU language model")
    insp.add_argument("--checkpoint", required=True)
    insp.add_argument("--text", help="a UTF-8 file to read (default: the model's validation text)")
    insp.add_argument("--chars", type=int, default=3000, help="read this many characters of it")
    insp.add_argument("--out", required=True, help="folder for saturation.png, cells.html, saturation.json")
    insp.set_defaults(handler=inspect_command)


def add_lm_flags(lm) -> None:
    add_setting(lm, "--data", help="a UTF-8 text file, or a hub dataset name")
    add_setting(lm, "--tokenizer", choices=["char", "sentencepiece"])
    add_setting(lm, "--vocab-size", type=int, help="SentencePiece vocabulary size")
    add_encoder_flags(lm)
    add_setting(lm, "--embed", type=int, help="embedding size (default: --hidden)")
    add_setting(lm, "--tie-weights", action="store_true")
    add_setting(lm, "--bidirectional", action="store_true", help=argparse.SUPPRESS)
    add_setting(lm, "--seq-len", type=int)
    add_setting(lm, "--val-fraction", type=float)
    add_setting(lm, "--val-tokens", type=int, help="validate during training on at most this many tokens")
    add_train_flags(lm)


def tune_lm(args) -> None:
    from ..tune import run_tuning
    from .task import LMConfig, LMTask

    def make_task(cfg, train_cfg):
        return LMTask(cfg, cache_dir=Path(train_cfg.out) / "data")

    run_tuning(args, "lm", LMConfig, LMTask, make_task)


def train_lm(args) -> None:
    from .. import trainer
    from .corpus import fetch_tiny_shakespeare
    from .task import LMConfig, LMTask
    from .tokenizer import tokenizer_from_state

    lm_cfg, train_cfg, ckpt = prepare_run("lm", vars(args), LMConfig, args.resume)
    lm_cfg.seed = train_cfg.seed
    if lm_cfg.data == LMConfig.data and not Path(lm_cfg.data).exists():
        fetch_tiny_shakespeare(Path(lm_cfg.data))
    if Path(lm_cfg.data).expanduser().exists():  # stored resolved: evaluate.py finds it from any folder
        lm_cfg.data = str(Path(lm_cfg.data).expanduser().resolve())
    tokenizer = tokenizer_from_state(ckpt["task_state"]["tokenizer"]) if ckpt else None
    rank = int(os.environ.get("RANK", "0"))
    task = LMTask(lm_cfg, tokenizer, cache_dir=Path(train_cfg.out) / "data" / (f"rank{rank}" if rank else ""))
    summary = trainer.run(task, train_cfg, ckpt)
    if rank == 0:
        best = Path(train_cfg.out) / "best.pt"
        print(f"\ndone: {summary['step']} steps in {summary['seconds']:.0f} s, best val loss "
              f"{summary['best']:.4f} nats/char; checkpoints in {train_cfg.out}/")
        print("sample:")
        generate_text(best, prompt="\n", length=300, temperature=0.8, seed=1)
        print(f"\n\nmore: seqapp generate --checkpoint {best} --prompt \"ROMEO:\" --length 500")


def evaluate_lm(args) -> None:
    import torch

    from .. import checkpoint
    from ..device import pick_device
    from ..task import EvalContext
    from .corpus import TextCorpus
    from .task import LMConfig, model_from_checkpoint, score_stream, scored_chars

    device = pick_device(args.device)
    ckpt = checkpoint.load(args.checkpoint, task="lm", map_location=device)
    model, tokenizer = model_from_checkpoint(ckpt)
    cfg = LMConfig.from_dict(ckpt["task_state"]["config"])
    data = args.data or cfg.data
    if not args.data and Path(data).is_absolute() and not Path(data).exists():
        raise UserError(f"the text this model was trained on is no longer at {data}; pass it with --data PATH")
    text = TextCorpus(data, cfg.val_fraction)
    ids = text.encode(tokenizer, args.split)
    if len(ids) < 2:
        raise UserError(f"{data}: the {args.split} split is too short to score")
    chars = scored_chars(tokenizer, ids)
    with torch.no_grad():
        result = score_stream(model.to(device), ids, chars, EvalContext(device, "fp32"), streams=1)
    result = {"data": data, "split": args.split, **result}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{data} ({args.split}): {result['loss']:.4f} nats/char, {result['bpc']:.4f} bits/char, "
              f"perplexity {result['perplexity']:.3f}, {result['chars']:,} characters")


def generate_text(checkpoint_path, prompt, length, temperature, top_k=None, top_p=None, seed=1,
                  device_name="cpu", num_samples=1, backend="auto") -> list[str]:
    """Print the samples: one as it is made, several each after its own header line."""
    from .. import checkpoint
    from ..device import pick_device
    from .generate import check_sampling, generate_many
    from .task import model_from_checkpoint

    check_sampling(length, temperature, top_k, top_p, num_samples)
    device = pick_device(device_name)
    model, tokenizer = model_from_checkpoint(checkpoint.load(checkpoint_path, task="lm", map_location=device))
    if num_samples == 1:
        sys.stdout.write(prompt)
        return generate_many(model.to(device), tokenizer, prompt, length, temperature, top_k, top_p, seed,
                             backend=backend, stream=sys.stdout)
    samples = generate_many(model.to(device), tokenizer, prompt, length, temperature, top_k, top_p, seed,
                            num_samples, backend)
    for i, text in enumerate(samples, 1):
        print(f"--- sample {i} of {num_samples} ---")
        print(prompt + text, end="\n\n" if i < num_samples else "")
    return samples


def generate_command(args) -> None:
    generate_text(args.checkpoint, args.prompt, args.length, args.temperature, args.top_k, args.top_p, args.seed,
                  args.device, args.num_samples, args.backend)
    print()


def inspect_command(args) -> None:
    import torch

    from .. import checkpoint
    from ..errors import positive
    from .corpus import TextCorpus, check_text_file
    from .inspect import GATES, choose_cells, plot_saturation, saturation, unroll, write_html
    from .task import LMConfig, model_from_checkpoint

    positive("--chars", args.chars)
    ckpt = checkpoint.load(args.checkpoint, task="lm")
    model, tokenizer = model_from_checkpoint(ckpt)
    cell = model.encoder.config.cell
    if cell not in GATES:
        raise UserError(f"{args.checkpoint} is a {cell} model: a simple RNN has no gates to inspect (use lstm or gru)")
    if tokenizer.kind != "char":
        raise UserError("inspect colours text one character per step: it needs a --tokenizer char model")
    if args.text:
        check_text_file(Path(args.text))
        with open(args.text, encoding="utf-8") as f:
            text = f.read(args.chars)
    else:
        cfg = LMConfig.from_dict(ckpt["task_state"]["config"])
        text = next(TextCorpus(cfg.data, cfg.val_fraction).text("val"), "")[: args.chars]
    if len(text) < 2:
        raise UserError("inspect needs at least two characters of text")
    ids = torch.as_tensor(tokenizer.encode(text).astype("int64"))
    layers = unroll(model.encoder, model.embed(ids))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot_saturation(layers, cell, out / "saturation.png")
    top_cells = layers[-1]["cell"]
    chosen = choose_cells(top_cells, text)
    write_html(text, top_cells, chosen, out / "cells.html", title=f"{Path(args.checkpoint)}: {cell}, top layer")
    summary = {}
    for i, layer in enumerate(layers):
        for gate in GATES[cell]:
            lo, hi = saturation(layer[gate])
            summary[f"layer{i + 1}_{gate}"] = {"left_mean": float(lo.mean()), "right_mean": float(hi.mean()),
                                               "units_right_half_the_time": int((hi > 0.5).sum()),
                                               "units_left_half_the_time": int((lo > 0.5).sum()),
                                               "units": int(len(lo))}
    (out / "saturation.json").write_text(json.dumps(summary, indent=1))
    print(f"{len(text):,} characters, {cell}, {len(layers)} layer(s) of {top_cells.shape[1]} units")
    print(f"{'layer/gate':>16} {'<0.1 (mean)':>12} {'>0.9 (mean)':>12} {'units >0.9 half the time':>26}")
    for name, row in summary.items():
        print(f"{name:>16} {row['left_mean']:12.3f} {row['right_mean']:12.3f} "
              f"{row['units_right_half_the_time']:>19} of {row['units']}")
    print(f"scatter: {out / 'saturation.png'}; coloured text: {out / 'cells.html'}")
