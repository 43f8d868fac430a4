import numpy as np
import pytest

from seqapp.text.tokenizer import CharTokenizer, SentencePieceTokenizer, tokenizer_from_state

MIXED = "Hello, wörld! 😀🎉 漢字かな 한국어\n\ttabs  and  spaces\n"


def test_char_round_trip_with_emoji_and_cjk():
    tok = CharTokenizer.train([MIXED])
    ids = tok.encode(MIXED)
    assert tok.decode(ids) == MIXED
    assert ids.dtype == np.uint8  # the smallest type that fits


def test_char_unseen_character_becomes_unknown_not_a_crash():
    tok = CharTokenizer.train(["abc"])
    ids = tok.encode("abz")
    assert ids[-1] == tok.unk_id
    assert tok.decode(ids) == "ab"
    assert tok.unknown_in("abz") == {"z"}


def test_char_large_vocab_uses_wider_dtype():
    text = "".join(chr(0x4E00 + i) for i in range(400))
    tok = CharTokenizer.train([text])
    ids = tok.encode(text)
    assert ids.dtype == np.uint16 and tok.decode(ids) == text


@pytest.mark.parametrize("make", [lambda: CharTokenizer.train([MIXED * 3]),
                                  lambda: SentencePieceTokenizer.train([MIXED * 50 + "the quick brown fox\n" * 50], 300)])
def test_state_travels_as_plain_values(make):
    tok = make()
    again = tokenizer_from_state(tok.state())
    assert again.decode(again.encode(MIXED)) == MIXED
    assert list(again.encode(MIXED)) == list(tok.encode(MIXED))


def test_sentencepiece_round_trip_including_unseen_characters():
    sp = SentencePieceTokenizer.train(["to be or not to be, that is the question\n" * 200], 300)
    text = "to be 😀 漢字\n\n  or not"
    assert sp.decode(sp.encode(text)) == text  # byte fallback: nothing is lost
    assert sp.vocab_size >= 256


def test_sentencepiece_vocabulary_too_small_is_a_clear_error():
    from seqapp.errors import UserError

    with pytest.raises(UserError, match="--vocab-size 50 is too small"):
        SentencePieceTokenizer.train(["to be or not to be\n" * 100], 50)
