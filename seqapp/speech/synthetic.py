"""Synthetic training speech for a spotter: its keywords in many voices (positives), and what must not fire
it (negatives): the words that sound like each keyword, common English words, short phrases of them, and
sentences for mining. Every list is a seeded function of its arguments; the audio is cached (synthesize.py)."""
from __future__ import annotations

import numpy as np
import torch

from . import pronounce
from .synthesize import Voice, as_clips, random_voices, synthesize


def keyword_requests(keywords, per_keyword: int, seed: int) -> list[tuple[Voice, str, int]]:
    """(voice, text, keyword index): each keyword in `per_keyword` voices."""
    return [(voice, word, k) for k, word in enumerate(keywords)
            for voice in random_voices(per_keyword, seed * 1000 + k)]


def negative_texts(keywords, count: int, seed: int) -> list[str]:
    """`count` texts: a third look-alikes of the keywords (each keyword's in turn), a third common words, a
    third two- or three-word phrases of common words; none is a keyword or sounds exactly like one."""
    rng = np.random.default_rng(seed)
    look_alikes = [pronounce.confusables(k, keywords, limit=30) for k in keywords]
    common = [w for w in pronounce.common_words(5000) if not pronounce.sounds_like(w, keywords)]
    texts = []
    for i in range(count):
        kind = i % 3
        if kind == 0 and any(look_alikes):
            pool = look_alikes[(i // 3) % len(look_alikes)] or common
            texts.append(pool[rng.integers(len(pool))])
        elif kind == 1:
            texts.append(common[min(len(common) - 1, int(rng.pareto(1.0) * 50))])  # frequent words more often
        else:
            texts.append(" ".join(common[j] for j in rng.integers(len(common), size=int(rng.integers(2, 4)))))
    return texts


def sentence_texts(keywords, count: int, seed: int) -> list[str]:
    """Sentence-length runs of 6-14 common words with no keyword in them, for mining long audio."""
    rng = np.random.default_rng(seed)
    common = [w for w in pronounce.common_words(5000) if not pronounce.sounds_like(w, keywords)]
    return [" ".join(common[j] for j in rng.integers(len(common), size=int(rng.integers(6, 15)))) for _ in range(count)]


def positives(keywords, per_keyword: int, seed: int, cache) -> tuple[torch.Tensor, np.ndarray]:
    """(clips (n, 16000), keyword indices) for every keyword in `per_keyword` synthetic voices."""
    requests = keyword_requests(keywords, per_keyword, seed)
    waves = synthesize([(v, t) for v, t, _ in requests], cache, desc="synthetic keywords")
    return as_clips(waves), np.array([k for _, _, k in requests], dtype=np.int64)


def negatives(keywords, count: int, seed: int, cache) -> torch.Tensor:
    texts = negative_texts(keywords, count, seed)
    voices = random_voices(count, seed + 7)
    return as_clips(synthesize(list(zip(voices, texts)), cache, desc="synthetic other words"))


def sentences(keywords, count: int, seed: int, cache) -> list[np.ndarray]:
    texts = sentence_texts(keywords, count, seed)
    voices = random_voices(count, seed + 11)
    return synthesize(list(zip(voices, texts)), cache, desc="synthetic sentences")
