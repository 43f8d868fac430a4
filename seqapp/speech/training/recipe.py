"""`train.py kws --config configs/kws_stream.json`: everything the listening spotter needs, stage by stage in
the run folder, each stage skipped once done (so a stopped run continues with the same command):

  stream/      the streaming model
  roundN/      N mining rounds: the last model run over keyword-free audio (mining.py), its firings added to
               the hard negatives (minedN.pt), and the model fine-tuned on them
  verifier/    the clip model that checks each trigger (a clip preset, same negatives)
  best.pt      the bundle of the last streaming model and the verifier, calibrated on the validation streams
               (spotter.py, bundle.py): what spot --stream, listen and evaluate --stream take."""
from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

from ... import checkpoint, trainer
from ...config import read_json_object
from ...errors import UserError


def stage(task_cfg, train_cfg, out: Path) -> Path:
    """Train one stage into `out` (continuing it when it was stopped); its best.pt."""
    from .tasks import make_task

    done = out / "done.json"
    if done.is_file():
        return out / "best.pt"
    last = out / "last.pt"
    resume = checkpoint.load(last, task="kws") if last.is_file() else None
    summary = trainer.run(make_task(task_cfg), replace(train_cfg, out=str(out)), resume)
    done.write_text(json.dumps({"step": summary["step"], "best": summary["best"]}) + "\n")
    return out / "best.pt"


def verifier_settings(cfg, path: str):
    """The clip preset of the second stage, with the streaming run's data and negatives."""
    from ...trainer import TrainConfig
    from ..settings import KWSConfig

    preset = read_json_object(path, "verifier preset")
    shared = ("data", "other_speech", "speech_share", "synth_positives", "synth_negatives", "synth_cache",
              "unknown_share", "seed", "classes", "keywords", "recordings", "recording_share", "validation_voices",
              "synth_rooms", "look_alike_share", "synth_accents", "synth_rate_max",
              "synth_neural")
    values = {**preset, **{k: getattr(cfg, k) for k in shared}, "streaming": False}
    return KWSConfig.from_dict(values), TrainConfig.from_dict(values)


def saved_recipe(cfg, train_cfg, resume: bool, given: dict):
    """(settings, train settings) of a recipe run: those saved in its folder when it is continued (--resume),
    else the given ones, saved; None when this is not a recipe run."""
    from dataclasses import asdict

    from ...trainer import TrainConfig
    from ..settings import KWSConfig

    path = Path(train_cfg.out) / "recipe.json"
    if path.is_file():
        if not resume:
            raise UserError(f"{train_cfg.out} already holds a run ({path.name}); pass --resume to continue it, "
                            "or choose another --out")
        saved = read_json_object(path, "recipe settings")
        cfg, saved_train = KWSConfig.from_dict(saved["kws"]), TrainConfig.from_dict(saved["train"])
        if "device" in given:
            saved_train.device = train_cfg.device
        return cfg, saved_train
    if not (cfg.streaming and (cfg.mining_rounds or cfg.verifier)):
        return None
    cfg.check()  # before anything is written: a bad setting leaves no run folder behind
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"kws": asdict(cfg), "train": asdict(train_cfg)}, indent=2) + "\n")
    return cfg, train_cfg


def train_listening_spotter(cfg, train_cfg) -> Path:
    from .bundle import write_bundle
    from .mining import keyword_free_audio, mine, save_windows
    from ..settings import model_from_checkpoint
    from ..data import dataset as ds

    out = Path(train_cfg.out)
    best = stage(replace(cfg, mining_rounds=0, verifier=""), train_cfg, out / "stream")
    mined = None
    keywords = [n for n in cfg.names() if not n.startswith("_")]
    for r in range(1, cfg.mining_rounds + 1):
        windows = out / f"mined{r}.pt"
        if not windows.is_file():
            model, names = model_from_checkpoint(checkpoint.load(best, task="kws"))
            noise = ds.load_noise(ds.scan(cfg.data)[1])
            audio = keyword_free_audio(keywords, cfg.other_speech, cfg.mining_sentences, cfg.seed + r,
                                       cfg.synth_cache, noise)
            clips, fired = mine(model, names, audio, cfg.mining_threshold)
            save_windows(clips, windows, previous=mined)
            print(f"mining round {r}: {fired} firings on {sum(len(a) for a in audio) / 16000 / 60:.0f} minutes of "
                  f"keyword-free audio -> {windows}", file=sys.stderr)
        mined = windows
        round_cfg = replace(cfg, mining_rounds=0, verifier="", init_from=str(best), hard_negatives=str(windows),
                            hard_negative_share=cfg.hard_negative_share or 0.3)
        round_train = replace(train_cfg, steps=cfg.mining_steps, lr=train_cfg.lr * cfg.mining_lr_ratio,
                              warmup=min(train_cfg.warmup, cfg.mining_steps // 10), time_budget=0.0,
                              eval_every=max(1, cfg.mining_steps // 2))
        best = stage(round_cfg, round_train, out / f"round{r}")
    verifier = None
    if cfg.verifier:
        clip_cfg, clip_train = verifier_settings(cfg, cfg.verifier)
        verifier = stage(clip_cfg, replace(clip_train, device=train_cfg.device, precision=train_cfg.precision),
                         out / "verifier")
    if verifier is None and cfg.mining_rounds == 0:
        raise UserError("nothing to bundle: the recipe needs --mining-rounds or --verifier")
    return write_bundle(best, verifier, out / "best.pt", cfg.trigger)


def train(cfg, train_cfg, ckpt, given: dict, resume: bool):
    """`train kws`: the listening recipe when the settings ask for one (streaming, with mining or a verifier),
    else one trainer run. (settings used, what was made in words; None on ranks other than 0)."""
    import os

    from .tasks import make_task

    best = Path(train_cfg.out) / "best.pt"
    recipe = saved_recipe(cfg, train_cfg, resume, given) if ckpt is None else None
    if recipe:
        cfg, train_cfg = recipe
        train_listening_spotter(cfg, train_cfg)
        return cfg, (f"the listening spotter (streaming model{', mining' if cfg.mining_rounds else ''}"
                     f"{', verifier' if cfg.verifier else ''}) is {best}")
    task = make_task(cfg)
    if ckpt is None and cfg.epochs and "steps" not in given:
        train_cfg.steps = max(1, round(cfg.epochs * task.steps_per_epoch))
    summary = trainer.run(task, train_cfg, ckpt)
    if int(os.environ.get("RANK", "0")) != 0:
        return cfg, None
    return cfg, (f"{summary['step']} steps in {summary['seconds']:.0f} s, best validation {task.select_metric} "
                 f"{summary['best']:.4f}; checkpoints in {train_cfg.out}/")
