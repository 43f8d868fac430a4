"""A user's own clips of their keywords: `seqapp record` says the word N times into the microphone (a
countdown, a level meter) and writes DIR/WORD/WORD_001.wav ...; `train.py kws --recordings DIR` reads that
layout (one folder per keyword, spaces as underscores) as positives."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from ...errors import UserError, positive
from .audio import AUDIO_SUFFIXES, SAMPLE_RATE, load_audio
from .keywords import folder_name, keyword_of_folder

MAX_CLIPS = 2000
QUIET_DB = -45.0  # a clip whose loudest 50 ms is below this heard nothing


def load(folder: str | Path, keywords: list[str]) -> tuple[torch.Tensor, np.ndarray]:
    """(clips (n, 16000), keyword index of each) from FOLDER/KEYWORD/*.wav|flac; one line for a folder that is
    missing, empty, too large, or holds a word that is not a keyword."""
    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"recordings folder not found: {root}")
    paths, which = [], []
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        keyword = keyword_of_folder(sub.name, keywords)
        if keyword is None:
            raise UserError(f"{sub}: {sub.name!r} is not one of the keywords ({', '.join(keywords)}); "
                            f"name each folder after its keyword (e.g. {folder_name(keywords[0])}/)")
        files = sorted(p for p in sub.iterdir() if p.name.lower().endswith(AUDIO_SUFFIXES))
        paths += files
        which += [keywords.index(keyword)] * len(files)
    if not paths:
        raise UserError(f"{root}: no .wav or .flac clips in keyword folders ({folder_name(keywords[0])}/...; "
                        "seqapp record writes that layout)")
    if len(paths) > MAX_CLIPS:
        raise UserError(f"{root}: {len(paths)} clips, at most {MAX_CLIPS} recordings")
    missing = [k for i, k in enumerate(keywords) if i not in which]
    if missing:
        print(f"note: no recordings of {', '.join(missing)} in {root}", file=sys.stderr)
    return torch.stack([load_audio(p) for p in paths]), np.array(which, dtype=np.int64)


def level_db(block: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(block, dtype=np.float64)) + 1e-10))


def meter(db: float, width: int = 30) -> str:
    filled = int(np.clip((db + 60) / 60, 0, 1) * width)
    return "[" + "#" * filled + " " * (width - filled) + f"] {db:6.1f} dB"


class Blocks:
    """Audio blocks of any size, taken `samples` at a time (a block's remainder waits for the next take)."""

    def __init__(self, source):
        self.source, self.pending = iter(source), np.zeros(0, np.float32)

    def take(self, samples: int, show=None) -> np.ndarray:
        got, have = [self.pending[:samples]], min(samples, len(self.pending))
        self.pending = self.pending[samples:]
        while have < samples:
            block = next(self.source, None)
            if block is None:
                raise UserError("the audio input stopped before the clips were recorded")
            if show:
                show(block)
            got.append(block[: samples - have])
            self.pending = block[samples - have:]
            have += len(got[-1])
        return np.concatenate(got)


def record(word: str, count: int, out: str | Path, seconds: float = 1.5, countdown: float = 1.0,
           device=None, log=None) -> list[Path]:
    """Record `count` clips of `word`: before each, `countdown` seconds (counted in audio, so the prompt and
    the clip line up with what the microphone heard), then `seconds` of audio with a level meter; a clip that
    heard nothing is recorded again (at most `count` times over). Written as 16-bit WAV in OUT/WORD/."""
    import soundfile as sf

    from .sources import microphone_blocks

    positive("--count", count)
    if not 0.5 <= seconds <= 5:
        raise UserError(f"--seconds must be in [0.5, 5], got {seconds}")
    if not 0 <= countdown <= 10:
        raise UserError(f"--countdown must be in [0, 10], got {countdown}")
    log = log or sys.stderr
    folder = Path(out) / folder_name(word)
    folder.mkdir(parents=True, exist_ok=True)
    first = 1 + max((int(p.stem.rsplit("_", 1)[-1]) for p in folder.glob(f"{folder_name(word)}_*.wav")
                     if p.stem.rsplit("_", 1)[-1].isdigit()), default=0)
    blocks = Blocks(microphone_blocks(0.05, device))
    written, tries = [], 0
    while len(written) < count:
        tries += 1
        if tries > 2 * count:
            raise UserError(f"heard nothing in {tries - 1} tries: is the microphone on? (level below {QUIET_DB} dB)")
        print(f"clip {len(written) + 1}/{count}: say {word!r} after the count", file=log)
        if countdown > 0:
            blocks.take(int(countdown * SAMPLE_RATE))
        print("  now", file=log)
        clip = blocks.take(int(seconds * SAMPLE_RATE),
                           show=lambda b: print("\r  " + meter(level_db(b)), end="", file=log, flush=True))
        print("", file=log)
        frames = clip[: len(clip) // 800 * 800].reshape(-1, 800)
        if max((level_db(f) for f in frames), default=-100.0) < QUIET_DB:
            print("  too quiet: again", file=log)
            continue
        path = folder / f"{folder_name(word)}_{first + len(written):03d}.wav"
        sf.write(str(path), np.clip(clip, -1, 1), SAMPLE_RATE, subtype="PCM_16")
        written.append(path)
        print(f"  kept {path}", file=log)
    return written
