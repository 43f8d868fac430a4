"""Where negatives are mined: run a streaming spotter over long audio that holds no keyword (running speech,
synthesized sentences, noise), keep the second of audio before every moment it fires at a low threshold, and
hand those windows back to training as _unknown_ clips, drawn more often than their number alone would be
(--hard-negative-share)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ... import checkpoint
from ...errors import UserError
from ..data.audio import SAMPLE_RATE
from ..listening.decision import DecisionConfig, detect
from ..listening.stream import posteriors

WINDOW_BEFORE_S, WINDOW_AFTER_S = 0.9, 0.1  # a firing's clip: the word that fired it ends just before it


def firing_times(model, names, wave: torch.Tensor, threshold: float) -> list[float]:
    times, probs = posteriors(model, wave)
    return [d.time for d in detect(times, probs, names, DecisionConfig(threshold=threshold), model.step_seconds)]


def windows_at(wave: torch.Tensor, times: list[float]) -> torch.Tensor:
    """The 1 s clip around each time: WINDOW_BEFORE_S before it to WINDOW_AFTER_S after, zero-padded."""
    padded = torch.nn.functional.pad(wave, (SAMPLE_RATE, SAMPLE_RATE))
    starts = [int(round((t - WINDOW_BEFORE_S) * SAMPLE_RATE)) + SAMPLE_RATE for t in times]
    return torch.stack([padded[s: s + SAMPLE_RATE] for s in starts]) if starts else torch.zeros(0, SAMPLE_RATE)


def mine(model, names, recordings: list[torch.Tensor], threshold: float = 0.3) -> tuple[torch.Tensor, int]:
    """(windows where the model fired, firings) over every keyword-free recording."""
    found = [windows_at(w, firing_times(model, names, w, threshold)) for w in recordings]
    clips = torch.cat(found) if found else torch.zeros(0, SAMPLE_RATE)
    return clips, len(clips)


def save_windows(clips: torch.Tensor, path: str | Path, previous: str | Path | None = None) -> Path:
    """Write the windows (with the windows of an earlier round, when given) as a plain tensor file."""
    if previous:
        clips = torch.cat([load_windows(previous), clips])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.save({"task": "kws-hard-negatives", "clips": clips.to(torch.float16)}, path)
    return path


def load_windows(path: str | Path) -> torch.Tensor:
    ckpt = checkpoint.load(path, task="kws-hard-negatives")
    clips = ckpt.get("clips")
    if not isinstance(clips, torch.Tensor) or clips.ndim != 2 or clips.shape[1] != SAMPLE_RATE:
        raise UserError(f"{path}: not a file of mined windows")
    return clips.float()


def keyword_free_audio(keywords, other_speech_root: str = "", sentences: int = 0, seed: int = 0,
                       cache: str = "data/synth_cache", noise: torch.Tensor | None = None) -> list[torch.Tensor]:
    """Long audio with none of `keywords` in it: other speech's training sentences, `sentences` synthesized
    sentences of common words (joined into one recording), and the training noise at a few volumes."""
    from ..data import other_speech
    from ..voices import synthetic

    recordings = []
    if other_speech_root:
        recordings += other_speech.running_speech(other_speech_root, "training")
    if sentences:
        gap = np.zeros(SAMPLE_RATE // 2, np.float32)
        spoken = synthetic.sentences(keywords, sentences, seed, cache)
        recordings.append(torch.from_numpy(np.concatenate([np.concatenate([s, gap]) for s in spoken])))
    if noise is not None and len(noise):
        recordings += [noise * gain for gain in (0.1, 0.3, 1.0)]
    return recordings


def mine_checkpoint(checkpoint_path: str, out: str, other_speech_root: str = "", noise_folder: str = "",
                    sentences: int = 300, threshold: float = 0.3, previous: str | None = None, seed: int = 1,
                    cache: str = "data/synth_cache") -> tuple[int, float]:
    """`seqapp mine`: a streaming spotter's firings on keyword-free audio, written as windows to `out`;
    (firings, minutes of audio mined)."""
    from ..data import dataset as ds
    from ..data.streams import noise_files
    from ..models.spotters import StreamingSpotter
    from ..settings import model_from_checkpoint

    model, names = model_from_checkpoint(checkpoint.load(checkpoint_path, task="kws"))
    if not isinstance(model, StreamingSpotter):
        raise UserError(f"{checkpoint_path} is a clip model: mining runs a streaming spotter")
    if not 0 < threshold <= 1:
        raise UserError(f"--threshold must be in (0, 1], got {threshold}")
    noise = ds.load_noise(noise_files(Path(noise_folder), Path(noise_folder))) if noise_folder else None
    audio = keyword_free_audio([n for n in names if not n.startswith("_")], other_speech_root, max(0, sentences),
                               seed, cache, noise)
    if not audio:
        raise UserError("nothing to mine: give --other-speech, --noise or --sentences")
    clips, fired = mine(model, names, audio, threshold)
    save_windows(clips, out, previous=previous)
    return fired, sum(len(a) for a in audio) / SAMPLE_RATE / 60
