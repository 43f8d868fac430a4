"""Where training and validation clips come from besides the pool's: keyword folders left out of the negatives,
and held-out synthetic voices for validating your own words."""
from __future__ import annotations

import sys

import numpy as np
import torch

from ..data import dataset as ds
from ..data.audio import SAMPLE_RATE
from ..data.keywords import keyword_of_folder
from ..settings import KWSConfig, voice_draw
from ..voices import synthetic


def without_keywords(clips: list, keywords: list[str], root) -> list:
    """The clips, less any word folder of a custom keyword (a keyword is never a negative); says which."""
    dropped = {c.word for c in clips if keyword_of_folder(c.word, keywords)}
    if dropped:
        print(f"note: {', '.join(sorted(dropped))} in {root} is a keyword: its clips are left out of the negatives",
              file=sys.stderr)
    return [c for c in clips if c.word not in dropped]


def with_validation_voices(cfg: KWSConfig, names: list[str], waves: torch.Tensor, labels: np.ndarray):
    """Validation clips of custom keywords (the pool has none): synthetic voices drawn with another seed."""
    keywords = [n for n in names if n not in (ds.SILENCE, ds.UNKNOWN)]
    clips, which = synthetic.positives(keywords, cfg.validation_voices, cfg.seed + 99991, cfg.synth_cache,
                                       desc="validation voices", draw=voice_draw(cfg))
    return (torch.cat([waves, clips]),
            np.concatenate([labels, np.array([names.index(keywords[k]) for k in which], dtype=np.int64)]))


def validation_negatives(cfg: KWSConfig, names: list[str]) -> torch.Tensor:
    """cfg.validation_negatives synthetic other words and look-alikes, drawn apart from training's (another seed:
    other texts, accents, rates and pitches of the same synthesizers), for the keyword-free validation streams:
    the few hundred real other words there leave a keyword without look-alikes (`on`, `off`) a threshold that
    real speech passes."""
    if not cfg.validation_negatives:
        return torch.zeros(0, SAMPLE_RATE)
    keywords = [n for n in names if n not in (ds.SILENCE, ds.UNKNOWN)]
    return synthetic.negatives(keywords, cfg.validation_negatives, cfg.seed + 99991, cfg.synth_cache,
                               cfg.look_alike_share, desc="validation negatives", draw=voice_draw(cfg, negatives=True))
