"""Tokenizers: characters or SentencePiece. Their whole state travels in the checkpoint as plain values."""
from __future__ import annotations

import io
import re
from typing import Iterable

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
    def train(cls, texts: Iterable[str], vocab_size=None) -> "CharTokenizer":
        seen: set[str] = set()
        for text in texts:
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

    def unknown_in(self, text: str) -> set[str]:
        return set(text) - set(self.chars)

    def state(self) -> dict:
        return {"kind": self.kind, "chars": self.chars}


class SentencePieceTokenizer:
    """SentencePiece (unigram) trained on the training split. Identity normalisation, newline as its own
    piece and byte fallback, so decode(encode(text)) == text for any text."""

    kind = "sentencepiece"

    def __init__(self, model_proto: bytes):
        import sentencepiece as spm

        self.proto = model_proto
        self.sp = spm.SentencePieceProcessor(model_proto=model_proto)

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 2000) -> "SentencePieceTokenizer":
        import sentencepiece as spm

        lines = (line for text in texts for line in text.split("\n") if line)
        buffer = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=lines, model_writer=buffer, vocab_size=vocab_size, model_type="unigram",
                character_coverage=1.0, byte_fallback=True, normalization_rule_name="identity",
                remove_extra_whitespaces=False, add_dummy_prefix=False, user_defined_symbols=["\n"],
                hard_vocab_limit=False, input_sentence_size=2_000_000, shuffle_input_sentence=False,  # same vocabulary on every rank
                minloglevel=2, num_threads=2)
        except RuntimeError as e:
            needed = re.search(r"(\d+) vs (\d+)", str(e))
            if needed:
                raise UserError(f"--vocab-size {vocab_size} is too small: SentencePiece needs at least "
                                f"{needed.group(2)} pieces for this text (256 byte pieces + its characters)") from None
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

    def unknown_in(self, text: str) -> set[str]:
        return set()  # byte fallback covers every character

    def state(self) -> dict:
        return {"kind": self.kind, "model": torch.frombuffer(bytearray(self.proto), dtype=torch.uint8)}


TOKENIZERS = {"char": CharTokenizer, "sentencepiece": SentencePieceTokenizer}


def train_tokenizer(kind: str, texts: Iterable[str], vocab_size: int | None):
    if kind not in TOKENIZERS:
        raise UserError(f"unknown tokenizer {kind!r} (choose char or sentencepiece)")
    if kind == "sentencepiece":
        return SentencePieceTokenizer.train(texts, vocab_size or 2000)
    return CharTokenizer.train(texts)


def tokenizer_from_state(state: dict):
    if state["kind"] == "char":
        return CharTokenizer(state["chars"])
    return SentencePieceTokenizer(state["model"].numpy().tobytes())
