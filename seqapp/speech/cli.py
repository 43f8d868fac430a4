"""`train kws`, `evaluate kws` and `spot`."""
from __future__ import annotations

import argparse


def add_train_kws_flags(p, add_encoder_flags) -> None:
    add = lambda *flags, **kw: p.add_argument(*flags, default=argparse.SUPPRESS, **kw)  # noqa: E731
    add("--data", help="Speech Commands folder (one folder per word, _background_noise_/)")
    add("--classes", type=int, choices=[12, 35])
    add("--features", choices=["logmel", "mfcc"])
    add_encoder_flags(p)
    add("--bidirectional", action=argparse.BooleanOptionalAction)
    add("--pooling", choices=["last", "mean", "attention"])
    add("--epochs", type=float, help="training length in passes over the training set (instead of --steps)")
    add("--augment", action=argparse.BooleanOptionalAction, help="training-time augmentation (default: on)")
    add("--skip-bad-files", action="store_true", help="skip unreadable clips (counted) instead of stopping")


def train_kws(args, prepare_run) -> None:
    import os
    from pathlib import Path

    from .. import trainer
    from .task import KWSConfig, KWSTask

    given = vars(args)
    cfg, train_cfg, ckpt = prepare_run("kws", given, KWSConfig, args.resume)
    cfg.seed = train_cfg.seed
    task = KWSTask(cfg)
    if ckpt is None and cfg.epochs and "steps" not in given:
        train_cfg.steps = max(1, round(cfg.epochs * task.steps_per_epoch))
    summary = trainer.run(task, train_cfg, ckpt)
    if int(os.environ.get("RANK", "0")) == 0:
        best = Path(train_cfg.out) / "best.pt"
        print(f"\ndone: {summary['step']} steps in {summary['seconds']:.0f} s, best validation accuracy "
              f"{summary['best']:.4f}; checkpoints in {train_cfg.out}/")
        print(f"score it: python evaluate.py kws --checkpoint {best} --data PATH/TO/speech_commands_test")
        print(f"label clips: seqapp spot --checkpoint {best} clip.wav")


def load_eval_set(root, names, seed: int = 0):
    """(waves, labels, description) from a canonical test-set folder, or the testing split of a standard
    Speech Commands folder (with _silence_ clips cut from its background noise)."""
    from ..errors import UserError
    from . import dataset as ds

    clips, noise_files = ds.scan(root)
    if ds.is_test_set_layout(clips):
        chosen, what = clips, "canonical test set"
    else:
        chosen, what = ds.assign_splits(root, clips)["testing"], "testing split"
    waves, labels, _ = ds.load_labelled(chosen, names, desc=what)
    if len(labels) == 0:
        raise UserError(f"{root}: no clips in its {what} for the classes {', '.join(names)}")
    if what == "testing split":
        waves, labels = ds.add_silence(waves, labels, names, ds.load_noise(noise_files), seed)
    return waves, labels, what


def evaluate_kws(args) -> None:
    import json
    from pathlib import Path

    from .. import checkpoint
    from ..device import pick_device
    from ..task import EvalContext
    from .plots import plot_confusion
    from .task import model_from_checkpoint, score

    device = pick_device(args.device)
    ckpt = checkpoint.load(args.checkpoint, task="kws", map_location=device)
    model, names = model_from_checkpoint(ckpt)
    waves, labels, what = load_eval_set(Path(args.data), names)
    result = score(model.to(device), waves, labels, names, EvalContext(device, "fp32"))
    out = Path(args.out) if args.out else Path(args.checkpoint).parent
    out.mkdir(parents=True, exist_ok=True)
    png = out / "confusion.png"
    plot_confusion(result["confusion"], names, png, title=f"{args.data} ({what}): accuracy {result['accuracy']:.1%}")
    result = {"data": str(args.data), "set": what, **result, "confusion_png": str(png)}
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.data} ({what}, {result['clips']} clips): accuracy {result['accuracy']:.2%}, "
          f"macro F1 {result['macro_f1']:.3f}")
    print(f"{'class':>10} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>7}")
    for name, c in result["per_class"].items():
        print(f"{name:>10} {c['precision']:9.3f} {c['recall']:7.3f} {c['f1']:6.3f} {c['support']:7d}")
    print("confusion (rows: truth, columns: predicted)")
    width = max(len(n) for n in names)
    print(" " * (width + 1) + " ".join(f"{n[:5]:>5}" for n in names))
    for name, row in zip(names, result["confusion"]):
        print(f"{name:>{width}} " + " ".join(f"{v:5d}" for v in row))
    print(f"confusion matrix: {png}")


def audio_files(paths) -> list:
    from pathlib import Path

    from ..errors import UserError
    from .audio import AUDIO_SUFFIXES

    files = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.name.lower().endswith(AUDIO_SUFFIXES))
            if not found:
                raise UserError(f"{p}: no .wav or .flac files in this folder")
            files += found
        else:
            files.append(p)
    return files


def spot(args) -> None:
    import json

    import torch

    from .. import checkpoint
    from ..device import pick_device
    from ..errors import positive
    from .audio import load_audio
    from .task import model_from_checkpoint

    positive("--top-k", args.top_k)
    device = pick_device(args.device)
    model, names = model_from_checkpoint(checkpoint.load(args.checkpoint, task="kws", map_location=device))
    model.to(device)
    files = audio_files(args.files)
    waves = torch.stack([load_audio(f) for f in files])
    with torch.no_grad():
        probs = torch.softmax(model(waves.to(device)).float(), dim=-1).cpu()
    top = probs.topk(min(args.top_k, len(names)), dim=-1)
    results = [{"file": str(f), "label": names[int(i[0])],
                "top": [{"label": names[int(j)], "p": round(float(p), 4)} for p, j in zip(ps, i)]}
               for f, ps, i in zip(files, top.values, top.indices)]
    if args.json:
        print(json.dumps(results))
        return
    for r in results:
        ranked = "  ".join(f"{t['label']} {t['p']:.3f}" for t in r["top"])
        print(f"{r['file']}\t{r['label']}\t{ranked}")
