"""Real speech that holds no keyword (../shared/data/other_speech, see data/README.md): LibriSpeech sentences
(running speech), isolated words (wake words, spoken digits). Each file goes to one split by a hash of its
speaker (LibriSpeech: the id before the first dash; digits: the name after the digit; wake words have no
speaker, so the file), the same split on every machine: 50% training, 10% validation (calibration and
checkpoint selection), 40% testing (the running-speech test streams)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from ...errors import UserError
from .audio import AUDIO_SUFFIXES, read_audio

SPLITS = (("training", 50), ("validation", 10), ("testing", 40))
RUNNING, ISOLATED = ("librispeech",), ("wake_words", "digits")


def speaker(path: Path, part: str) -> str:
    if part == "librispeech":
        return path.name.split("-")[0]
    if part == "digits":
        return path.name.split("_")[1] if path.name.count("_") >= 2 else path.name
    return f"{path.parent.name}/{path.name}"


def split_of(path: Path, part: str) -> str:
    bucket = int(hashlib.sha1(speaker(path, part).encode()).hexdigest(), 16) % 100
    for name, share in SPLITS:
        if bucket < share:
            return name
        bucket -= share
    return SPLITS[-1][0]


def files(root: str | Path, part: str, split: str, exclude_words=()) -> list[Path]:
    """The audio files of one part (librispeech, wake_words, digits) in one split; word folders named in
    `exclude_words` (a custom keyword, with spaces as underscores) are left out."""
    folder = Path(root) / part
    if not folder.is_dir():
        return []
    skip = {w.replace(" ", "_") for w in exclude_words}
    found = sorted(p for p in folder.rglob("*") if p.name.lower().endswith(AUDIO_SUFFIXES)
                   and not (p.parent != folder and p.parent.name in skip))
    return [p for p in found if split_of(p, part) == split]


def check_root(root: str | Path) -> Path:
    root = Path(root)
    if not root.is_dir() or not any((root / p).is_dir() for p in RUNNING + ISOLATED):
        raise UserError(f"other-speech folder not found or empty: {root} (expected librispeech/, wake_words/, "
                        "digits/; see data/README.md, or pass --other-speech '' to train without it)")
    return root


def running_speech(root: str | Path, split: str) -> list[torch.Tensor]:
    """The split's long utterances, each as 16 kHz float32 scaled to a peak of 0.9."""
    waves = [read_audio(p) for part in RUNNING for p in files(root, part, split)]
    return [w * (0.9 / w.abs().max().clamp_min(1e-4)) for w in waves]


def isolated_words(root: str | Path, split: str, exclude_words=()) -> list[Path]:
    return [p for part in ISOLATED for p in files(root, part, split, exclude_words)]
