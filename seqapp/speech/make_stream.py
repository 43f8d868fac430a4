"""Labelled test streams, built the way TensorFlow's generate_streaming_test_wav builds them: one word per
3 s slot at a random 0-2 s offset, 30% of them other words, over background noise at a random volume, seeded.
The noise is the held-out last 20% of each noise file (training never hears it)."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..errors import UserError, positive
from . import dataset as ds
from .audio import SAMPLE_RATE, load_audio, word_bounds

SLOT_SECONDS, MAX_OFFSET_SECONDS = 3.0, 2.0
MAX_MINUTES = 600  # the stream is built in memory: 10 hours is 2.3 GB of float32


def word_of(clip: ds.Clip) -> str:
    """The spoken word: the folder, or in the test set's _unknown_/ folder the prefix of the file name."""
    return clip.path.name.split("_")[0] if clip.word == ds.UNKNOWN else clip.word


def stream_sources(root: Path, split: str = "testing") -> tuple[list[ds.Clip], list[ds.Clip]]:
    """(keyword clips, other-word clips) from a canonical test-set folder, or a split of a standard folder
    (testing; validation for streams that tune the decision layer)."""
    clips, _ = ds.scan(root)
    if not ds.is_test_set_layout(clips):
        clips = ds.assign_splits(root, clips)[split]
    keywords = [c for c in clips if c.word in ds.KEYWORDS]
    others = [c for c in clips if c.word not in ds.KEYWORDS and c.word != ds.SILENCE]
    return keywords, others


def noise_files(root: Path, noise: Path | None) -> list[Path]:
    folder = noise or root / ds.NOISE_DIR
    if not folder.is_dir():
        raise UserError(f"no background-noise folder at {folder}: pass --noise PATH/_background_noise_")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".wav", ".flac"))
    if not files:
        raise UserError(f"{folder}: no .wav or .flac noise files")
    return files


def make_stream(root: str | Path, minutes: float, seed: int = 1, keyword_share: float = 0.7,
                max_noise: float = 0.1, noise: str | Path | None = None,
                split: str = "testing") -> tuple[np.ndarray, list[tuple]]:
    """(16 kHz samples, rows of (word, start_ms, end_ms)) for a stream of `minutes`."""
    positive("--minutes", minutes)
    if minutes > MAX_MINUTES:
        raise UserError(f"--minutes {minutes:g} is too long: at most {MAX_MINUTES} (build several streams instead)")
    if not 0 <= keyword_share <= 1:
        raise UserError(f"--keyword-share must be in [0, 1], got {keyword_share}")
    if not 0 <= max_noise <= 1:
        raise UserError(f"--max-noise must be in [0, 1], got {max_noise}")
    root = Path(root)
    keywords, others = stream_sources(root, split)
    if (keyword_share > 0 and not keywords) or (keyword_share < 1 and not others):
        raise UserError(f"{root}: its test clips lack {'keywords' if not keywords else 'other words'} for a stream")
    background = ds.load_noise(noise_files(root, Path(noise) if noise else None), part="test").numpy()
    rng = np.random.default_rng(seed)
    slot = int(SLOT_SECONDS * SAMPLE_RATE)
    slots = max(1, int(minutes * 60 / SLOT_SECONDS))
    wave = np.zeros(slots * slot, dtype=np.float32)
    rows = []
    for i in tqdm(range(slots), desc="placing words", unit="word", leave=False, dynamic_ncols=True):
        pool = keywords if rng.random() < keyword_share else others
        clip = pool[int(rng.integers(len(pool)))]
        audio = load_audio(clip.path)
        start, end = (int(v) for v in word_bounds(audio[None]))
        at = i * slot + int(rng.uniform(0, MAX_OFFSET_SECONDS) * SAMPLE_RATE)
        wave[at: at + SAMPLE_RATE] += audio.numpy()
        rows.append((word_of(clip), round((at + start) * 1000 / SAMPLE_RATE), round((at + end) * 1000 / SAMPLE_RATE)))
        if len(background) > slot:
            cut = int(rng.integers(len(background) - slot))
            wave[i * slot: (i + 1) * slot] += background[cut: cut + slot] * rng.uniform(0, max_noise)
    return np.clip(wave, -1, 1), rows


def write_stream(wave: np.ndarray, rows: list[tuple], out: Path) -> Path:
    """The audio as 16-bit WAV and the labels as CSV beside it (same name, .csv)."""
    import soundfile as sf

    out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(out), wave, SAMPLE_RATE, subtype="PCM_16")
    labels = out.with_suffix(".csv")
    with labels.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["word", "start_ms", "end_ms"])
        writer.writerows(rows)
    return labels


def read_labels(path: str | Path) -> list[tuple[str, float, float]]:
    """word,start_ms,end_ms rows -> (word, start s, end s); one line for any malformed file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"labels file not found: {path}")
    rows = []
    try:
        with path.open(newline="") as f:
            for row in csv.DictReader(f):
                rows.append((row["word"], float(row["start_ms"]) / 1000, float(row["end_ms"]) / 1000))
    except (KeyError, TypeError, ValueError, UnicodeDecodeError, csv.Error):
        raise UserError(f"{path}: expected CSV rows of word,start_ms,end_ms") from None
    return rows
