"""One file for the listening spotter: a streaming checkpoint with its clip verifier inside and the operating
curve of the two stages, calibrated on the validation streams (the same streams, made from training-side data
only, that chose the streaming checkpoint). Loaded by spotter.load_spotter like any streaming checkpoint."""
from __future__ import annotations

import sys
from pathlib import Path

from ... import checkpoint
from ...errors import UserError, positive
from ..data import dataset as ds
from ..listening.calibrate import calibrate
from ..listening.decision import DecisionConfig
from ..data.streams import validation_streams
from ..models.spotters import StreamingSpotter
from ..listening.spotter import Spotter, evidence
from ..settings import KWSConfig, model_from_checkpoint

TRIGGER = 0.3


def calibration_streams(cfg: KWSConfig, names: list[str]) -> list[tuple]:
    from .sources import validation_negatives, with_validation_voices, without_keywords

    root = Path(cfg.data)
    clips, noise_files = ds.scan(root)
    keywords = [n for n in names if not n.startswith("_")]
    if cfg.keywords:
        clips = without_keywords(clips, keywords, root)
    waves, labels, _ = ds.load_labelled(ds.assign_splits(root, clips)["validation"], names, desc="validation clips")
    if cfg.keywords:
        waves, labels = with_validation_voices(cfg, names, waves, labels)
    return validation_streams(names, waves, labels, ds.load_noise(noise_files), cfg.other_speech, cfg.seed,
                              validation_negatives(cfg, names))


def write_bundle(stream_path, verifier_path, out, trigger: float = TRIGGER,
                 validation_negatives: int | None = None) -> Path:
    """The streaming checkpoint at `stream_path` with the clip model at `verifier_path` (None: alone), its
    curve calibrated anew (`validation_negatives`: that many held-out synthetic negatives instead of the
    streaming run's), written atomically to `out`."""
    if not 0 < trigger < 1:
        raise UserError(f"--trigger must be in (0, 1), got {trigger}")
    ckpt = checkpoint.load(stream_path, task="kws")
    model, names = model_from_checkpoint(ckpt)
    if not isinstance(model, StreamingSpotter):
        raise UserError(f"{stream_path} is not a streaming spotter")
    bundle = {k: v for k, v in ckpt.items() if k in ("task", "task_state", "train_config", "model", "step", "best",
                                                      "precision")}
    if verifier_path is not None:
        clip = checkpoint.load(verifier_path, task="kws")
        verifier, verifier_names = model_from_checkpoint(clip)
        if isinstance(verifier, StreamingSpotter):
            raise UserError(f"{verifier_path} is a streaming model; the verifier is a clip model")
        if set(n for n in names if not n.startswith("_")) - set(verifier_names):
            raise UserError(f"{verifier_path} does not know every keyword of {stream_path}")
        cfg = KWSConfig.from_dict(ckpt["task_state"]["config"])
        if validation_negatives is not None:
            cfg.validation_negatives = positive("--validation-negatives", validation_negatives, allow_zero=True)
        spotter = Spotter(model, names, DecisionConfig(threshold=cfg.threshold, trigger=trigger), verifier.eval(),
                          verifier_names)
        print("calibrating the two stages on the validation streams ...", file=sys.stderr)
        bundle.update(verifier={"task_state": clip["task_state"], "model": clip["model"]}, trigger=trigger,
                      calibration=calibrate(evidence(spotter, calibration_streams(cfg, names))))
    checkpoint.save(bundle, out)
    return Path(out)
