"""A spotter's own words: `--keywords "computer,smart mirror"` parsed and checked, the class list they make
(the keywords, then _silence_ and _unknown_), and how a keyword is named on disk (a folder per word, spaces as
underscores: smart_mirror/)."""
from __future__ import annotations

import re

from ...errors import UserError

MAX_KEYWORDS, MAX_WORDS, MAX_CHARS = 20, 4, 40
SILENCE, UNKNOWN = "_silence_", "_unknown_"  # the two classes besides the keywords
SPOKEN = re.compile(r"[a-z]+(?:['-][a-z]+)*(?: [a-z]+(?:['-][a-z]+)*)*")


def parse_keywords(text: str, flag: str = "--keywords") -> list[str]:
    """The comma-separated keywords, lower-cased with single spaces; one line for an empty, duplicate, too long
    or unpronounceable one (anything but letters, spaces, apostrophes and hyphens: the synthesizer would spell
    digits and symbols in a way a user never says them)."""
    keywords = [" ".join(k.lower().replace("_", " ").split()) for k in str(text).split(",")]
    if not any(keywords):
        raise UserError(f"{flag} is empty: give one or more words, comma-separated (\"computer,lights on\")")
    seen = set()
    for word in keywords:
        if not word:
            raise UserError(f"{flag} {text!r} has an empty keyword (two commas, or one at an end)")
        if word in seen:
            raise UserError(f"{flag}: {word!r} is given twice")
        if not SPOKEN.fullmatch(word):
            raise UserError(f"{flag}: cannot pronounce {word!r}: use letters (a-z), spaces, ' and - only "
                            "(write numbers as words)")
        if len(word) > MAX_CHARS or len(word.split()) > MAX_WORDS:
            raise UserError(f"{flag}: {word!r} is too long for a keyword (at most {MAX_WORDS} words, "
                            f"{MAX_CHARS} characters; a spotter hears about a second)")
        seen.add(word)
    if len(keywords) > MAX_KEYWORDS:
        raise UserError(f"{flag}: {len(keywords)} keywords, at most {MAX_KEYWORDS}")
    return keywords


def class_names(keywords: list[str]) -> list[str]:
    return [*keywords, SILENCE, UNKNOWN]


def folder_name(keyword: str) -> str:
    return keyword.replace(" ", "_")


def keyword_of_folder(folder: str, keywords) -> str | None:
    """The keyword a word folder holds (smart_mirror/ -> "smart mirror"), or None."""
    word = " ".join(folder.lower().replace("_", " ").split())
    return word if word in keywords else None
