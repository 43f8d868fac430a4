"""The long-range problems' commands: `train synth`, `evaluate synth`, `gradients`."""
from __future__ import annotations

import json
from pathlib import Path

from ..cli import add_encoder_flags, add_setting, add_train_and_tune, add_train_flags, prepare_run


def register(groups, commands) -> None:
    add_train_and_tune(groups, "synth", "long-range problems: adding, copy memory", add_synth_flags, train_synth,
                       tune_synth)

    ev = groups["evaluate"].add_parser("synth")
    ev.add_argument("--checkpoint", required=True)
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(handler=evaluate_synth)

    grad = commands.add_parser("gradients", help="gradient norm against distance in time, at init and trained")
    grad.add_argument("--checkpoint", help="a synth checkpoint (without one: a fresh model from the flags below)")
    add_problem_flags(grad)
    add_encoder_flags(grad)
    add_setting(grad, "--seed", type=int)
    grad.add_argument("--batch", type=int, default=64, help="sequences the norms are taken over")
    grad.add_argument("--out", help="folder for gradients.png and gradients.json (default: beside the checkpoint)")
    grad.set_defaults(handler=gradients)


def tune_synth(args) -> None:
    from ..tune import run_tuning
    from .task import SynthConfig, SynthTask

    run_tuning(args, "synth", SynthConfig, SynthTask, lambda cfg, train_cfg: SynthTask(cfg))


def add_synth_flags(p) -> None:
    add_problem_flags(p)
    add_encoder_flags(p)
    add_train_flags(p)


def add_problem_flags(p) -> None:
    add_setting(p, "--task", "--problem", dest="problem", choices=["adding", "copy"], help="which problem")
    add_setting(p, "--length", type=int, help="T, the span to bridge")
    add_setting(p, "--val-size", type=int, help="fixed validation sequences")


def train_synth(args) -> None:
    import os

    from .. import trainer
    from .task import SynthConfig, SynthTask

    cfg, train_cfg, ckpt = prepare_run("synth", vars(args), SynthConfig, args.resume)
    cfg.seed = train_cfg.seed
    summary = trainer.run(SynthTask(cfg), train_cfg, ckpt)
    if int(os.environ.get("RANK", "0")) == 0:
        from .task import baseline

        print(f"\ndone: {summary['step']} steps in {summary['seconds']:.0f} s, best validation loss "
              f"{summary['best']:.4g} (memoryless baseline {baseline(cfg):.4g}); checkpoints in {train_cfg.out}/")
        print(f"gradient flow: seqapp gradients --checkpoint {Path(train_cfg.out) / 'best.pt'}")


def evaluate_synth(args) -> None:
    from .. import checkpoint
    from ..device import pick_device
    from ..task import EvalContext
    from .task import SynthTask, model_from_checkpoint

    model, cfg = model_from_checkpoint(checkpoint.load(args.checkpoint, task="synth"))
    import torch

    with torch.no_grad():
        result = SynthTask(cfg).evaluate(model, EvalContext(pick_device("cpu"), "fp32"))
    result = {"problem": cfg.problem, "length": cfg.length, "cell": cfg.cell, **result}
    if args.json:
        print(json.dumps(result))
        return
    print(f"{cfg.problem} T={cfg.length} ({cfg.cell}, hidden {cfg.hidden}): loss {result['loss']:.4g} "
          f"(memoryless baseline {result['baseline']:.4g}), accuracy {result['accuracy']:.3f}")


def gradients(args) -> None:
    from .. import checkpoint
    from ..config import resolve
    from ..errors import positive
    from .gradients import init_and_trained, plot_gradients
    from .task import SynthConfig, model_from_checkpoint

    positive("--batch", args.batch)
    trained = None
    if args.checkpoint:
        trained, cfg = model_from_checkpoint(checkpoint.load(args.checkpoint, task="synth"))
        for name in ("problem", "length"):  # measure a trained model on another span if asked
            if name in vars(args):
                setattr(cfg, name, getattr(args, name))
    else:
        (cfg,) = resolve(vars(args), SynthConfig)
    curves = init_and_trained(cfg, trained, args.batch)
    out = Path(args.out) if args.out else (Path(args.checkpoint).parent if args.checkpoint else Path("."))
    out.mkdir(parents=True, exist_ok=True)
    plot_gradients({f"{name}, dL/dh": c["h"] for name, c in curves.items()}, out / "gradients.png",
                   title=f"{cfg.problem} T={cfg.length}, {cfg.cell} (hidden {cfg.hidden})")
    (out / "gradients.json").write_text(json.dumps({name: {k: v.tolist() for k, v in c.items()}
                                                    for name, c in curves.items()}))
    for name, c in curves.items():
        marks = [k for k in (1, 10, 50, 100, 200, 400) if k < len(c["h"])]
        shown = ", ".join(f"k={k}: {c['h'][k]:.2e}" for k in marks)
        print(f"{name:>14}: |dL/dh(T-k)| / |dL/dh(T)|  {shown}")
    print(f"plot: {out / 'gradients.png'}")
