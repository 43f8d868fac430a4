"""The `seqapp` command: train, evaluate, generate, spot. Every user error ends here as one line."""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import fields
from pathlib import Path

from .errors import UserError


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not argparse's usage block
        raise UserError(f"{self.prog}: {message}")


def _add(parser, *flags, **kwargs):
    parser.add_argument(*flags, default=argparse.SUPPRESS, **kwargs)


def add_train_flags(p) -> None:
    _add(p, "--config", help="a JSON preset (configs/); flags given here override it")
    _add(p, "--out", help="run folder: checkpoints, metrics.jsonl, curves.png, config.json")
    _add(p, "--steps", type=int)
    _add(p, "--lr", type=float)
    _add(p, "--warmup", type=int, help="linear warm-up steps")
    _add(p, "--schedule", choices=["wsd", "cosine", "constant"], help="learning-rate schedule after warm-up")
    _add(p, "--weight-decay", type=float)
    _add(p, "--grad-clip", type=float)
    _add(p, "--eval-every", type=int)
    _add(p, "--seed", type=int)
    _add(p, "--device", choices=["auto", "cpu", "cuda"])
    _add(p, "--precision", choices=["auto", "fp32", "bf16", "fp16"])
    _add(p, "--patience", type=int, help="stop after this many validations without improvement")
    _add(p, "--tensorboard", action="store_true", help="also write TensorBoard event files")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")


def add_encoder_flags(p) -> None:
    _add(p, "--cell", help="rnn_tanh | rnn_relu | lstm | gru")
    _add(p, "--layers", type=int)
    _add(p, "--hidden", type=int)
    _add(p, "--dropout", type=float)
    _add(p, "--batch-size", type=int)


def build_parser() -> Parser:
    parser = Parser(prog="seqapp", description="Gated recurrent networks: character LM and keyword spotting.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    train = commands.add_parser("train", help="train a model").add_subparsers(dest="task", required=True,
                                                                              parser_class=Parser)
    lm = train.add_parser("lm", help="character / SentencePiece language model")
    _add(lm, "--data", help="a UTF-8 text file, or a hub dataset name")
    _add(lm, "--tokenizer", choices=["char", "sentencepiece"])
    _add(lm, "--vocab-size", type=int, help="SentencePiece vocabulary size")
    add_encoder_flags(lm)
    _add(lm, "--embed", type=int, help="embedding size (default: --hidden)")
    _add(lm, "--tie-weights", action="store_true")
    _add(lm, "--bidirectional", action="store_true", help=argparse.SUPPRESS)
    _add(lm, "--seq-len", type=int)
    _add(lm, "--val-fraction", type=float)
    _add(lm, "--val-tokens", type=int, help="validate during training on at most this many tokens")
    add_train_flags(lm)

    kws = train.add_parser("kws", help="keyword spotter on Speech Commands")
    from .speech.cli import add_train_kws_flags

    add_train_kws_flags(kws, add_encoder_flags)
    add_train_flags(kws)

    evaluate = commands.add_parser("evaluate", help="score a checkpoint").add_subparsers(
        dest="task", required=True, parser_class=Parser)
    ev_lm = evaluate.add_parser("lm")
    ev_lm.add_argument("--checkpoint", required=True)
    ev_lm.add_argument("--data", help="text to score (default: the text it was trained on)")
    ev_lm.add_argument("--split", choices=["val", "all"], default="val")
    ev_lm.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ev_lm.add_argument("--json", action="store_true")
    ev_kws = evaluate.add_parser("kws")
    ev_kws.add_argument("--checkpoint", required=True)
    ev_kws.add_argument("--data", required=True, help="Speech Commands folder or canonical test-set folder")
    ev_kws.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ev_kws.add_argument("--json", action="store_true")
    ev_kws.add_argument("--out", help="where to write confusion.png (default: beside the checkpoint)")

    gen = commands.add_parser("generate", help="sample text from a language model")
    gen.add_argument("--checkpoint", required=True)
    gen.add_argument("--prompt", default="\n")
    gen.add_argument("--length", type=int, default=500)
    gen.add_argument("--temperature", type=float, default=0.8)
    gen.add_argument("--top-k", type=int)
    gen.add_argument("--top-p", type=float)
    gen.add_argument("--seed", type=int, default=1)
    gen.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu")

    spot = commands.add_parser("spot", help="label recordings with a keyword spotter")
    spot.add_argument("--checkpoint", required=True)
    spot.add_argument("files", nargs="+", help="WAV/FLAC files or folders of them")
    spot.add_argument("--top-k", type=int, default=3)
    spot.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu")
    spot.add_argument("--json", action="store_true")
    return parser


def resolve(given: dict, *config_classes) -> list:
    """Each config: its defaults, then the --config preset, then the flags given on the command line."""
    values = {}
    if "config" in given:
        path = Path(given["config"])
        if not path.is_file():
            raise UserError(f"config file not found: {path}")
        try:
            values = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise UserError(f"{path} is not valid JSON ({e})") from None
        if not isinstance(values, dict):
            raise UserError(f"{path} must hold one JSON object of settings")
        known = {f.name: f for cls in config_classes for f in fields(cls)}
        unknown = set(values) - set(known)
        if unknown:
            raise UserError(f"{path}: unknown settings {', '.join(sorted(unknown))}")
        for name, value in values.items():
            check_type(path, name, value, known[name].default)
    values.update({k: v for k, v in given.items() if k not in ("config", "command", "task", "resume")})
    return [cls.from_dict(values) for cls in config_classes]


def check_type(path, name: str, value, default) -> None:
    """A preset value must have the type of the setting's default (an int may stand for a float)."""
    if default is None or value is None:
        return
    expected = type(default)
    ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
    ok = ok or (expected is float and isinstance(value, int) and not isinstance(value, bool))
    if not ok:
        raise UserError(f"{path}: {name} should be {expected.__name__}, got {value!r}")


def prepare_run(task_name: str, given: dict, task_class, resume: bool):
    """(task config, train config, checkpoint to resume or None), refusing to overwrite a finished run."""
    from . import checkpoint
    from .trainer import TrainConfig

    task_cfg, train_cfg = resolve(given, task_class, TrainConfig)
    last = Path(train_cfg.out) / "last.pt"
    if not last.exists():
        if resume:
            print(f"no {last} yet: starting a new run", file=sys.stderr)
        return task_cfg, train_cfg, None
    if not resume:
        raise UserError(f"{train_cfg.out} already holds a run ({last.name}); pass --resume to continue it, "
                        "or choose another --out")
    ckpt = checkpoint.load(last, task=task_name)
    task_cfg = task_class.from_dict(ckpt["task_state"]["config"])
    saved = TrainConfig.from_dict(ckpt["train_config"])
    if "device" in given:  # a run may move between machines
        saved.device = train_cfg.device
    return task_cfg, saved, ckpt


def train_lm(args) -> None:
    from . import trainer
    from .text.corpus import fetch_tiny_shakespeare
    from .text.task import LMConfig, LMTask
    from .text.tokenizer import tokenizer_from_state

    given = vars(args)
    lm_cfg, train_cfg, ckpt = prepare_run("lm", given, LMConfig, args.resume)
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

    from . import checkpoint
    from .device import pick_device
    from .task import EvalContext
    from .text.corpus import TextCorpus
    from .text.task import LMConfig, model_from_checkpoint, score_stream, scored_chars

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
                  device_name="cpu") -> str:
    from . import checkpoint
    from .device import pick_device
    from .text.generate import check_sampling, generate
    from .text.task import model_from_checkpoint

    check_sampling(length, temperature, top_k, top_p)
    device = pick_device(device_name)
    model, tokenizer = model_from_checkpoint(checkpoint.load(checkpoint_path, task="lm", map_location=device))
    sys.stdout.write(prompt)
    return generate(model.to(device), tokenizer, prompt, length, temperature, top_k, top_p, seed, stream=sys.stdout)


def run_command(args) -> None:
    if args.command == "train":
        if args.task == "lm":
            return train_lm(args)
        from .speech.cli import train_kws

        return train_kws(args, prepare_run)
    if args.command == "evaluate":
        if args.task == "lm":
            return evaluate_lm(args)
        from .speech.cli import evaluate_kws

        return evaluate_kws(args)
    if args.command == "generate":
        generate_text(args.checkpoint, args.prompt, args.length, args.temperature, args.top_k, args.top_p,
                      args.seed, args.device)
        print()
        return None
    from .speech.cli import spot

    return spot(args)


def main(argv: list[str] | None = None) -> int:
    try:
        run_command(build_parser().parse_args(argv))
    except UserError as e:
        print(f"seqapp: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nseqapp: interrupted (checkpoints already written are intact; continue with --resume)",
              file=sys.stderr)
        return 130
    except OSError as e:  # the disk, a permission, a path: the user's environment, not a bug
        where = f": {e.filename}" if e.filename else ""
        print(f"seqapp: error: {e.strerror or e}{where}", file=sys.stderr)
        return 1
    except (MemoryError, RuntimeError) as e:
        if not isinstance(e, MemoryError) and "out of memory" not in str(e):
            raise
        print("seqapp: error: out of memory (try a smaller --batch-size or model)", file=sys.stderr)
        return 1
    return 0


def entry() -> None:
    sys.exit(main())
