"""Synthetic training speech for a spotter: its keywords in many voices (positives), and what must not fire
it (negatives): the words that sound like each keyword, common English words, short phrases of them, and
sentences for mining. Every list is a seeded function of its arguments; the audio is cached (synthesize.py)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from . import pronounce
from ..data.audio import SAMPLE_RATE
from .synthesize import Voice, VoiceDraw, as_clips, describe, phonemes, random_voices, synthesize


def keyword_requests(keywords, per_keyword: int, seed: int,
                     draw: VoiceDraw = VoiceDraw()) -> list[tuple[Voice, str, int]]:
    """(voice, text, keyword index): each keyword in `per_keyword` voices."""
    return [(voice, word, k) for k, word in enumerate(keywords)
            for voice in random_voices(per_keyword, seed * 1000 + k, draw=draw)]


def negative_texts(keywords, count: int, seed: int, look_alike_share: float = 1 / 3) -> list[str]:
    """`count` texts: a `look_alike_share` of look-alikes of the keywords (each keyword's in turn), the rest
    common words and two- or three-word phrases of them, alternately; none is a keyword or sounds exactly
    like one."""
    rng = np.random.default_rng(seed)
    look_alikes = [pronounce.look_alikes(k, tuple(keywords), limit=30) for k in keywords]
    common = [w for w in pronounce.common_words(5000) if not pronounce.sounds_like(w, keywords)]
    texts, alike, other = [], 0, 0
    for i in range(count):
        if math.ceil(i * look_alike_share) < math.ceil((i + 1) * look_alike_share) and any(look_alikes):
            pool = look_alikes[alike % len(look_alikes)] or common
            texts.append(pool[rng.integers(len(pool))])
            alike += 1
            continue
        if other % 2 == 0:
            texts.append(common[min(len(common) - 1, int(rng.pareto(1.0) * 50))])  # frequent words more often
        else:
            texts.append(" ".join(common[j] for j in rng.integers(len(common), size=int(rng.integers(2, 4)))))
        other += 1
    return texts


def sentence_texts(keywords, count: int, seed: int) -> list[str]:
    """Sentence-length runs of 6-14 common words with no keyword in them, for mining long audio."""
    rng = np.random.default_rng(seed)
    common = [w for w in pronounce.common_words(5000) if not pronounce.sounds_like(w, keywords)]
    return [" ".join(common[j] for j in rng.integers(len(common), size=int(rng.integers(6, 15)))) for _ in range(count)]


def positives(keywords, per_keyword: int, seed: int, cache, desc: str = "synthetic keywords",
              draw: VoiceDraw = VoiceDraw()) -> tuple[torch.Tensor, np.ndarray]:
    """(clips (n, 16000), keyword indices) for every keyword in `per_keyword` synthetic voices drawn by `draw`."""
    requests = keyword_requests(keywords, per_keyword, seed, draw)
    waves = synthesize([(v, t) for v, t, _ in requests], cache, desc=desc)
    return as_clips(waves), np.array([k for _, _, k in requests], dtype=np.int64)


def negatives(keywords, count: int, seed: int, cache, look_alike_share: float = 1 / 3,
              desc: str = "synthetic other words", draw: VoiceDraw = VoiceDraw()) -> torch.Tensor:
    texts = negative_texts(keywords, count, seed, look_alike_share)
    voices = random_voices(count, seed + 7, draw=draw)
    return as_clips(synthesize(list(zip(voices, texts)), cache, desc=desc))


def sentences(keywords, count: int, seed: int, cache) -> list[np.ndarray]:
    texts = sentence_texts(keywords, count, seed)
    voices = random_voices(count, seed + 11)
    return synthesize(list(zip(voices, texts)), cache, desc="synthetic sentences")


def say(text: str, voices: int, seed: int, out, cache, draw: VoiceDraw = VoiceDraw()) -> list[tuple]:
    """`text` in `voices` voices drawn as training draws them (`draw`), written to OUT/NN_voice.wav: [(path,
    voice, phonemes)] (seqapp say: hear what a custom spotter will learn from)."""
    chosen = random_voices(voices, seed, draw=draw)
    waves = synthesize([(v, text) for v in chosen], cache, desc=f"saying {text!r}")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for i, (voice, wave) in enumerate(zip(chosen, waves), 1):
        path = folder / f"{i:02d}_{voice.engine}_{voice.name.replace('+', '_')}.wav"
        sf.write(str(path), np.clip(wave, -1, 1), SAMPLE_RATE, subtype="PCM_16")
        written.append((path, describe(voice), phonemes(voice, text)))
    return written


def in_rooms(clips: torch.Tensor, share: float, seed: int) -> torch.Tensor:
    """A `share` of the clips as heard in a small simulated room: the direct sound plus a tail of exponentially
    decaying noise (reverberation time 0.15-0.8 s, 0-12 dB below the direct sound), rescaled to the clip's peak.
    Synthesized speech is dry, close and clean; recordings of people rarely are."""
    from torchaudio.functional import fftconvolve

    if share <= 0 or not len(clips):
        return clips
    rng = np.random.default_rng(seed)
    chosen = np.flatnonzero(rng.random(len(clips)) < share)
    length = int(0.8 * SAMPLE_RATE)
    t = np.arange(length) / SAMPLE_RATE
    out = clips.clone()
    for i in chosen:
        rt60, level_db = rng.uniform(0.15, 0.8), rng.uniform(-12, 0)
        tail = rng.standard_normal(length) * np.exp(-6.9 * t / rt60)
        tail *= 10 ** (level_db / 20) / max(1e-9, np.sqrt(np.sum(tail ** 2)))
        tail[0] = 1.0
        wet = fftconvolve(clips[i], torch.from_numpy(tail).float())[: clips.shape[1]]
        out[i] = wet * (clips[i].abs().max() / wet.abs().max().clamp_min(1e-6))
    return out
