import numpy as np
import pytest

from seqapp.text.tokenizer import CharTokenizer, SentencePieceTokenizer, tokenizer_from_state

MIXED = "Hello, wörld! 😀🎉 漢字かな 한국어\n\ttabs  and  spaces\n"


def test_char_round_trip_with_emoji_and_cjk():
    tok = CharTokenizer.train(lambda: [MIXED])
    ids = tok.encode(MIXED)
    assert tok.decode(ids) == MIXED
    assert ids.dtype == np.uint8  # the smallest type that fits


def test_char_unseen_character_becomes_unknown_not_a_crash():
    tok = CharTokenizer.train(lambda: ["abc"])
    ids = tok.encode("abz")
    assert ids[-1] == tok.unk_id
    assert tok.decode(ids) == "ab"
    assert tok.unknown_in("abz") == {"z"}


def test_char_large_vocab_uses_wider_dtype():
    text = "".join(chr(0x4E00 + i) for i in range(400))
    tok = CharTokenizer.train(lambda: [text])
    ids = tok.encode(text)
    assert ids.dtype == np.uint16 and tok.decode(ids) == text


@pytest.mark.parametrize("make", [lambda: CharTokenizer.train(lambda: [MIXED * 3]),
                                  lambda: SentencePieceTokenizer.train(lambda: [MIXED * 50 + "the quick brown fox\n" * 50], 300)])
def test_state_travels_as_plain_values(make):
    tok = make()
    again = tokenizer_from_state(tok.state())
    assert again.decode(again.encode(MIXED)) == MIXED
    assert list(again.encode(MIXED)) == list(tok.encode(MIXED))


def test_sentencepiece_round_trip_including_unseen_characters():
    sp = SentencePieceTokenizer.train(lambda: ["to be or not to be, that is the question\n" * 200], 300)
    text = "to be 😀 漢字\n\n  or not"
    assert sp.decode(sp.encode(text)) == text  # byte fallback: nothing is lost
    assert sp.vocab_size >= 256


def test_sentencepiece_vocabulary_too_small_is_a_clear_error():
    from seqapp.errors import UserError

    with pytest.raises(UserError, match="--vocab-size 260 is too small: SentencePiece needs at least 262"):
        SentencePieceTokenizer.train(lambda: ["to be or not to be\n" * 100], 260)


def many_characters_text(distinct: int = 3200, lines: int = 3000, seed: int = 0) -> str:
    """A multilingual text: Zipf-distributed CJK characters (>= 3,000 distinct) between English words."""
    rng = np.random.default_rng(seed)
    cjk = np.array([chr(0x4E00 + i) for i in range(distinct)])
    p = 1 / np.arange(1, distinct + 1)
    p /= p.sum()
    rows = ["".join(rng.choice(cjk, 30, p=p)) + " to be or not " + "".join(rng.choice(cjk, 10, p=p))
            for _ in range(lines)]
    rows.append("".join(cjk))  # every character at least once
    return "\n".join(rows) + "\n"


@pytest.mark.parametrize("vocab", [262, 512])
def test_sentencepiece_small_vocabulary_on_thousands_of_characters(vocab):
    text = many_characters_text()
    assert len(set(text)) >= 3000
    sp = SentencePieceTokenizer.train(lambda: [text], vocab)
    assert sp.vocab_size <= vocab
    ids = sp.encode(text)
    assert sp.decode(ids) == text  # rare characters are spelled in bytes, nothing is lost
    # the per-character loss divides by the characters the ids hold, also where byte pieces spell them
    assert sp.count_chars(ids) == len(text)
    spelled = [i for i in range(1, len(ids)) if sp.sp.is_byte(int(ids[i])) and not sp.sp.is_byte(int(ids[i - 1]))]
    assert spelled, "the text should need byte pieces at this vocabulary size"
    for cut in spelled[:50]:  # just before a byte-spelled character: every cut there is clean
        assert sp.count_chars(ids[:cut]) == len(sp.decode(ids[:cut]))
