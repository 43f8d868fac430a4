"""Tokenizers: characters or SentencePiece. Their whole state travels in the checkpoint as plain values."""
from __future__ import annotations

import io
import re
from collections import Counter
from typing import Callable, Iterable

import numpy as np
import torch

from ..errors import UserError


def smallest_dtype(vocab_size: int):
    return np.uint8 if vocab_size <= 256 else np.uint16 if vocab_size <= 65536 else np.uint32


class CharTokenizer:
    """One id per Unicode character seen in training, plus one id for anything unseen."""

    kind = "char"

    def __init__(self, chars: str):
        self.chars = "".join(sorted(set(chars)))
        self.codepoints = np.array([ord(c) for c in self.chars], dtype=np.int64)
        self.unk_id = len(self.chars)

    @classmethod
    def train(cls, texts: Callable[[], Iterable[str]], vocab_size=None) -> "CharTokenizer":
        seen: set[str] = set()
        for text in texts():
            seen.update(text)
        if not seen:
            raise UserError("the training text is empty")
        return cls("".join(seen))

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + 1

    def encode(self, text: str) -> np.ndarray:
        cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        idx = np.searchsorted(self.codepoints, cps).clip(0, len(self.chars) - 1)
        ids = np.where(self.codepoints[idx] == cps, idx, self.unk_id)
        return ids.astype(smallest_dtype(self.vocab_size))

    def decode(self, ids) -> str:
        return "".join(self.chars[i] for i in ids if i < self.unk_id)

    def count_chars(self, ids) -> int:
        return len(ids)  # one id per character, unknown ones included

    def unknown_in(self, text: str) -> set[str]:
        return set(text) - set(self.chars)

    def state(self) -> dict:
        return {"kind": self.kind, "chars": self.chars}


# SentencePiece's own pieces: 256 bytes, <unk>, <s>, </s>, plus ours: newline and the space marker.
RESERVED_PIECES = 256 + 3 + 2
MIN_SENTENCEPIECE_VOCAB = RESERVED_PIECES + 1
MAX_SENTENCES = 2_000_000


class SentencePieceTokenizer:
    """SentencePiece (unigram) trained on the training split. Identity normalisation, newline as its own
    piece and byte fallback, so decode(encode(text)) == text for any text, at any vocabulary size above the
    byte pieces: a text with more distinct characters than the vocabulary can hold keeps its most frequent
    ones as pieces and spells the rest in UTF-8 bytes, as LLaMA-style tokenizers do."""

    kind = "sentencepiece"

    def __init__(self, model_proto: bytes):
        import sentencepiece as spm

        self.proto = model_proto
        self.sp = spm.SentencePieceProcessor(model_proto=model_proto)
        self.chars_started = self._chars_started_per_piece()

    @classmethod
    def train(cls, texts: Callable[[], Iterable[str]], vocab_size: int = 2000) -> "SentencePieceTokenizer":
        import sentencepiece as spm

        if vocab_size < MIN_SENTENCEPIECE_VOCAB:
            raise UserError(f"--vocab-size {vocab_size} is too small: SentencePiece needs at least "
                            f"{MIN_SENTENCEPIECE_VOCAB} pieces (256 byte pieces, its control pieces, newline, space)")
        kept = frequent_characters(texts(), budget=max(1, (vocab_size - RESERVED_PIECES) // 2))
        buffer = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=training_sentences(texts(), kept), model_writer=buffer, vocab_size=vocab_size,
                model_type="unigram", character_coverage=1.0, byte_fallback=True, normalization_rule_name="identity",
                remove_extra_whitespaces=False, add_dummy_prefix=False, user_defined_symbols=["\n"],
                hard_vocab_limit=False, input_sentence_size=MAX_SENTENCES,
                shuffle_input_sentence=False,  # the same vocabulary on every rank
                minloglevel=2, num_threads=2)
        except RuntimeError as e:
            raise UserError(f"SentencePiece could not train a {vocab_size}-piece vocabulary: "
                            f"{str(e).splitlines()[0][-200:]}") from None
        return cls(buffer.getvalue())

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    def encode(self, text: str) -> np.ndarray:
        return np.asarray(self.sp.encode(text), dtype=smallest_dtype(self.vocab_size))

    def decode(self, ids) -> str:
        return self.sp.decode([int(i) for i in ids])

    def count_chars(self, ids) -> int:
        """The characters that start inside these tokens: exact even when a byte piece holds part of one."""
        return int(self.chars_started[np.asarray(ids, dtype=np.int64)].sum())

    def _chars_started_per_piece(self) -> np.ndarray:
        counts = np.zeros(self.vocab_size, dtype=np.int64)
        for i in range(self.vocab_size):
            if self.sp.is_byte(i):  # "<0xE4>": a character starts here unless it is a continuation byte
                counts[i] = (int(self.sp.id_to_piece(i)[3:5], 16) & 0xC0) != 0x80
            elif not (self.sp.is_control(i) or self.sp.is_unknown(i)):
                counts[i] = len(self.sp.id_to_piece(i))
        return counts

    def unknown_in(self, text: str) -> set[str]:
        return set()  # byte fallback covers every character

    def state(self) -> dict:
        return {"kind": self.kind, "model": torch.frombuffer(bytearray(self.proto), dtype=torch.uint8)}


def _lines(texts: Iterable[str]) -> Iterable[str]:
    count = 0
    for text in texts:
        for line in text.split("\n"):
            if line:
                yield line
                count += 1
                if count >= MAX_SENTENCES:
                    return


def frequent_characters(texts: Iterable[str], budget: int) -> str:
    """The `budget` most frequent characters (the space always among them: byte fallback cannot spell it)."""
    counts: Counter = Counter()
    for line in _lines(texts):
        counts.update(line)
    kept = {ch for ch, _ in counts.most_common(budget)} | {" "}
    return "".join(sorted(kept))


def training_sentences(texts: Iterable[str], kept: str) -> Iterable[str]:
    """Lines cut at characters outside `kept`, so SentencePiece learns pieces only from the kept ones and
    no false neighbours are made where a rare character was."""
    rare = re.compile(f"[^{re.escape(kept)}]+")
    for line in _lines(texts):
        yield from (part for part in rare.split(line) if part)


TOKENIZERS = {"char": CharTokenizer, "sentencepiece": SentencePieceTokenizer}


def train_tokenizer(kind: str, texts: Callable[[], Iterable[str]], vocab_size: int | None):
    """`texts` gives a fresh pass over the training text each time it is called (SentencePiece reads twice)."""
    if kind not in TOKENIZERS:
        raise UserError(f"unknown tokenizer {kind!r} (choose char or sentencepiece)")
    if kind == "sentencepiece":
        return SentencePieceTokenizer.train(texts, vocab_size or 2000)
    return CharTokenizer.train(texts)


def tokenizer_from_state(state: dict):
    if state["kind"] == "char":
        return CharTokenizer(state["chars"])
    return SentencePieceTokenizer(state["model"].numpy().tobytes())
