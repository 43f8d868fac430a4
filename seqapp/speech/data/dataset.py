"""Speech Commands on disk: the standard layout (one folder per word, _background_noise_/, split lists) and
the canonical test-set layout (_silence_/ and _unknown_/ beside the keyword folders)."""
from __future__ import annotations

import hashlib
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ...errors import UserError
from .audio import AUDIO_SUFFIXES, SAMPLE_RATE, load_audio, read_audio
from .keywords import SILENCE, UNKNOWN

KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
NOISE_DIR = "_background_noise_"
WORDS_35 = ("backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward", "four", "go",
            "happy", "house", "learn", "left", "marvin", "nine", "no", "off", "on", "one", "right", "seven",
            "sheila", "six", "stop", "three", "tree", "two", "up", "visual", "wow", "yes", "zero")
MAX_NUM_WAVS_PER_CLASS = 2**27 - 1  # from the dataset's README


def class_names(classes: int) -> list[str]:
    if classes == 12:
        return [*KEYWORDS, SILENCE, UNKNOWN]
    if classes == 35:
        return list(WORDS_35)
    raise UserError(f"--classes must be 12 or 35, got {classes}")


def label_of(word: str, names: list[str]) -> int | None:
    """The class index of a word folder, or None when the task has no place for it."""
    if word in names:
        return names.index(word)
    return names.index(UNKNOWN) if UNKNOWN in names else None


@dataclass(frozen=True)
class Clip:
    path: Path
    word: str      # the folder: a word, or _silence_ / _unknown_ in the test-set layout

    @property
    def key(self) -> str:
        """word/stem: how the split lists name a clip, whatever its extension (.wav, .flac, .wav.flac)."""
        return f"{self.word}/{self.path.name.split('.')[0]}"

    @property
    def speaker(self) -> str:
        return re.sub(r"_nohash_.*$", "", self.path.name.split(".")[0]).split("_")[-1]


def scan(root: str | Path) -> tuple[list[Clip], list[Path]]:
    """Every clip under `root` and the background-noise files, or one clear error."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"Speech Commands folder not found: {root}")
    clips, noise = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(p for p in folder.iterdir() if p.name.lower().endswith(AUDIO_SUFFIXES))
        if folder.name == NOISE_DIR:
            noise = files
        elif not folder.name.startswith(".") and (folder.name in (SILENCE, UNKNOWN) or not folder.name.startswith("_")):
            clips += [Clip(f, folder.name) for f in files]
    if not clips:
        raise UserError(f"{root} has no word folders with .wav or .flac clips (expected the Speech Commands "
                        "layout: one folder per word)")
    return clips, noise


def is_test_set_layout(clips: list[Clip]) -> bool:
    return any(c.word in (SILENCE, UNKNOWN) for c in clips)


def read_list(path: Path) -> set[str]:
    if not path.is_file():
        return set()
    return {line.strip().rsplit(".", 1)[0] for line in path.read_text().splitlines() if line.strip()}


def hash_split(clip: Clip, val_percent: float = 10, test_percent: float = 10) -> str:
    """The dataset's documented rule (its README's which_set): a hash of the speaker, so that a speaker's
    clips never straddle two splits."""
    hashed = hashlib.sha1(re.sub(r"_nohash_.*$", "", clip.path.name).encode()).hexdigest()
    percent = (int(hashed, 16) % (MAX_NUM_WAVS_PER_CLASS + 1)) * (100.0 / MAX_NUM_WAVS_PER_CLASS)
    if percent < val_percent:
        return "validation"
    return "testing" if percent < val_percent + test_percent else "training"


def assign_splits(root: Path, clips: list[Clip]) -> dict[str, list[Clip]]:
    """From validation_list.txt / testing_list.txt when they are there, else by the speaker hash."""
    val, test = read_list(root / "validation_list.txt"), read_list(root / "testing_list.txt")
    splits: dict[str, list[Clip]] = {"training": [], "validation": [], "testing": []}
    for clip in clips:
        if val or test:
            split = "validation" if clip.key in val else "testing" if clip.key in test else "training"
        else:
            split = hash_split(clip)
        splits[split].append(clip)
    return splits


def load_clips(clips: list[Clip], skip_bad: bool = False, desc: str = "audio") -> tuple[torch.Tensor, list[int]]:
    """All clips as one (n, 16000) float tensor, read on a few threads. With skip_bad, unreadable files are
    left out and their indices returned; otherwise the first one stops with its name."""
    def read(clip):
        try:
            return load_audio(clip.path)
        except UserError:
            if not skip_bad:
                raise
            return None

    with ThreadPoolExecutor(max_workers=4) as pool:
        waves = list(tqdm(pool.map(read, clips), total=len(clips), desc=f"reading {desc}", unit="clip",
                          leave=False, dynamic_ncols=True))
    skipped = [i for i, w in enumerate(waves) if w is None]
    kept = [w for w in waves if w is not None]
    return (torch.stack(kept) if kept else torch.zeros(0, SAMPLE_RATE)), skipped


NOISE_TRAIN_SHARE = 0.8  # the first 80% of each noise file trains; the last 20% makes test streams


def load_noise(files: list[Path], part: str = "train") -> torch.Tensor:
    """The background-noise recordings, each scaled to a peak of 1, joined: the first 80% of each file
    ("train", for augmentation and _silence_) or the last 20% ("test", held out for test streams)."""
    waves = []
    for f in files:
        wave = read_audio(f)
        wave = wave / wave.abs().max().clamp_min(1e-4)
        cut = int(len(wave) * NOISE_TRAIN_SHARE)
        waves.append(wave[:cut] if part == "train" else wave[cut:])
    return torch.cat(waves) if waves else torch.zeros(0)


def load_labelled(clips: list[Clip], names: list[str], skip_bad: bool = False, desc: str = "audio"):
    """(waves, labels, skipped) for the clips whose word has a class in `names`."""
    labelled = [(c, label_of(c.word, names)) for c in clips]
    labelled = [(c, y) for c, y in labelled if y is not None]
    waves, skipped = load_clips([c for c, _ in labelled], skip_bad, desc)
    dropped = set(skipped)
    labels = np.array([y for i, (_, y) in enumerate(labelled) if i not in dropped], dtype=np.int64)
    return waves, labels, len(skipped)


def add_silence(waves: torch.Tensor, labels: np.ndarray, names: list[str], noise: torch.Tensor, seed: int):
    """Append fixed `_silence_` clips, as many as an average class has, when the task has that class."""
    if SILENCE not in names:
        return waves, labels
    count = max(1, len(labels) // (len(names) - 1))
    return (torch.cat([waves, silence_clips(noise, count, seed)]),
            np.concatenate([labels, np.full(count, names.index(SILENCE))]))


def silence_clips(noise: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    """Fixed `_silence_` clips for validation: noise at random gains, plus true silence when no noise."""
    rng = np.random.default_rng(seed)
    clips = torch.zeros(count, SAMPLE_RATE)
    for i in range(count):
        if len(noise) > SAMPLE_RATE and i % 10:
            start = int(rng.integers(0, len(noise) - SAMPLE_RATE))
            clips[i] = noise[start: start + SAMPLE_RATE] * float(rng.uniform(0, 0.5))
    return clips


def load_eval_set(root, names, seed: int = 0):
    """(waves, labels, description) from a canonical test-set folder, or the testing split of a standard
    Speech Commands folder (with _silence_ clips cut from its background noise)."""
    clips, noise_files = scan(root)
    if is_test_set_layout(clips):
        chosen, what = clips, "canonical test set"
    else:
        chosen, what = assign_splits(root, clips)["testing"], "testing split"
    waves, labels, _ = load_labelled(chosen, names, desc=what)
    if len(labels) == 0:
        raise UserError(f"{root}: no clips in its {what} for the classes {', '.join(names)}")
    if what == "testing split":
        waves, labels = add_silence(waves, labels, names, load_noise(noise_files, part="test"), seed)
    return waves, labels, what
