"""The `seqapp` command: the flags every task shares, and dispatch to the commands each task package declares
(TASK_CLIS). Every user error ends here as one line."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .config import parse_duration, resolve
from .errors import UserError


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not argparse's usage block
        raise UserError(f"{self.prog}: {message}")


def add_setting(parser, *flags, **kwargs):
    """A flag that overrides a preset only when given (absent flags leave the preset's value)."""
    parser.add_argument(*flags, default=argparse.SUPPRESS, **kwargs)


def add_train_flags(p) -> None:
    add_setting(p, "--config", help="a JSON preset (configs/); flags given here override it")
    add_setting(p, "--out", help="run folder: checkpoints, metrics.jsonl, curves.png, config.json")
    add_setting(p, "--steps", type=int)
    add_setting(p, "--time-budget", type=parse_duration,
                help="train for this long instead of --steps (90s, 10m, 1h30m): the schedule ends on time")
    add_setting(p, "--budget-evals", type=int, help="validations spread over a time budget (default 10)")
    add_setting(p, "--lr", type=float)
    add_setting(p, "--warmup", type=int, help="linear warm-up steps")
    add_setting(p, "--schedule", choices=["wsd", "cosine", "constant"], help="learning-rate schedule after warm-up")
    add_setting(p, "--weight-decay", type=float)
    add_setting(p, "--pretrained-lr-ratio", type=float, help="fine-tuned pretrained weights learn at lr x this (0.1)")
    add_setting(p, "--grad-clip", type=float)
    add_setting(p, "--ema", type=float, help="validate and keep a moving average of the weights with this decay "
                                             "per step (0.99 averages over about 100 steps); 0: off")
    add_setting(p, "--eval-every", type=int)
    add_setting(p, "--seed", type=int)
    add_setting(p, "--device", choices=["auto", "cpu", "cuda"])
    add_setting(p, "--precision", choices=["auto", "fp32", "bf16", "fp16"])
    add_setting(p, "--patience", type=int, help="stop after this many validations without improvement")
    add_setting(p, "--tensorboard", action="store_true", help="also write TensorBoard event files")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")


def add_encoder_flags(p) -> None:
    add_setting(p, "--cell", help="rnn_tanh | rnn_relu | lstm | gru")
    add_setting(p, "--layers", type=int)
    add_setting(p, "--hidden", type=int)
    add_setting(p, "--params", type=int, help="choose --hidden so that the model has about this many parameters")
    add_setting(p, "--forget-bias", type=float, help="LSTM: the forget gate's initial bias (default 0; 1 helps)")
    add_setting(p, "--dropout", type=float)
    add_setting(p, "--batch-size", type=int)


def add_train_and_tune(groups, name: str, help_text: str, add_flags, train_handler, tune_handler) -> None:
    """A task's `train NAME` and `tune NAME` parsers: the same settings, and the tuner's own flags on the second."""
    from .tune import add_tune_flags

    for group, handler in (("train", train_handler), ("tune", tune_handler)):
        parser = groups[group].add_parser(name, help=f"{'tune ' if group == 'tune' else ''}{help_text}")
        add_flags(parser)
        if group == "tune":
            add_tune_flags(parser)
        parser.set_defaults(handler=handler)


# Each package's command line: a module with register(groups, commands) that adds its parsers to the groups
# (train, evaluate, tune: one subcommand per task) or its own commands, and sets each one's `handler`.
# A new task is one more line here; no other file changes.
TASK_CLIS = ("seqapp.text.cli", "seqapp.speech.cli", "seqapp.long_range.cli", "seqapp.study.cli", "seqapp.serve.cli")


def build_parser() -> Parser:
    import importlib

    from .onnx_export import add_export_command

    parser = Parser(prog="seqapp", description="Gated recurrent networks: character LM and keyword spotting.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    groups = {name: commands.add_parser(name, help=text).add_subparsers(dest="task", required=True, parser_class=Parser)
              for name, text in (("train", "train a model"), ("evaluate", "score a checkpoint"),
                                 ("tune", "search a task's settings with Optuna, each trial under a time budget"))}
    for module in TASK_CLIS:
        importlib.import_module(module).register(groups, commands)
    add_export_command(commands)  # after the tasks, which name their exporters as they register
    return parser


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


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        args.handler(args)
    except UserError as e:
        print(f"seqapp: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nseqapp: interrupted (checkpoints already written are intact; continue with --resume)",
              file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader stopped reading (`seqapp spot --stream f.wav | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's flush has nowhere to fail
        return 141
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
