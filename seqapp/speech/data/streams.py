"""Labelled test streams, built the way TensorFlow's generate_streaming_test_wav builds them: one word per
3 s slot at a random 0-2 s offset, 30% of them other words, over background noise at a random volume, seeded.
The noise is the held-out last 20% of each noise file (training never hears it)."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ...errors import UserError, positive
from . import dataset as ds
from .audio import SAMPLE_RATE, load_audio, read_audio, word_bounds
from .keywords import keyword_of_folder

SLOT_SECONDS, MAX_OFFSET_SECONDS = 3.0, 2.0
MAX_MINUTES = 600  # the stream is built in memory: 10 hours is 2.3 GB of float32


def word_of(clip: ds.Clip) -> str:
    """The spoken word: the folder (spaces for underscores), or in the test set's _unknown_/ folder the prefix of
    the file name."""
    return clip.path.name.split("_")[0] if clip.word == ds.UNKNOWN else clip.word.replace("_", " ")


def stream_sources(root: Path, split: str = "testing", keywords=ds.KEYWORDS) -> tuple[list[ds.Clip], list[ds.Clip]]:
    """(keyword clips, other-word clips) from a canonical test-set folder, or a split of a standard folder
    (testing; validation for streams that tune the decision layer). A folder is a keyword's when it is named
    after it (smart_mirror/ for "smart mirror")."""
    clips, _ = ds.scan(root)
    if not ds.is_test_set_layout(clips) and split != "all":
        clips = ds.assign_splits(root, clips)[split]
    spoken = [c for c in clips if c.word != ds.SILENCE]
    mine = [c for c in spoken if keyword_of_folder(c.word, keywords)]
    return mine, [c for c in spoken if not keyword_of_folder(c.word, keywords)]


def noise_files(root: Path, noise: Path | None) -> list[Path]:
    folder = noise or root / ds.NOISE_DIR
    if not folder.is_dir():
        raise UserError(f"no background-noise folder at {folder}: pass --noise PATH/_background_noise_")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".wav", ".flac"))
    if not files:
        raise UserError(f"{folder}: no .wav or .flac noise files")
    return files


def check_stream_flags(minutes: float | None, keyword_share: float, max_noise: float) -> None:
    positive("--minutes", minutes)
    if minutes is not None and minutes > MAX_MINUTES:
        raise UserError(f"--minutes {minutes:g} is too long: at most {MAX_MINUTES} (build several streams instead)")
    if not 0 <= keyword_share <= 1:
        raise UserError(f"--keyword-share must be in [0, 1], got {keyword_share}")
    if not 0 <= max_noise <= 1:
        raise UserError(f"--max-noise must be in [0, 1], got {max_noise}")


def make_stream(root: str | Path, minutes: float, seed: int = 1, keyword_share: float = 0.7,
                max_noise: float = 0.1, noise: str | Path | None = None,
                split: str = "testing", keywords=ds.KEYWORDS) -> tuple[np.ndarray, list[tuple]]:
    """(16 kHz samples, rows of (word, start_ms, end_ms)) for a stream of `minutes`; the words of `keywords`
    (Speech Commands' ten unless given) are the keywords."""
    check_stream_flags(minutes, keyword_share, max_noise)
    root = Path(root)
    keywords, others = stream_sources(root, split, keywords)
    if (keyword_share > 0 and not keywords) or (keyword_share < 1 and not others):
        raise UserError(f"{root}: its test clips lack {'keywords' if not keywords else 'other words'} for a stream")
    background = ds.load_noise(noise_files(root, Path(noise) if noise else None), part="test").numpy()
    return place_words(keywords, others, lambda c: (word_of(c), load_audio(c.path)), minutes, seed, keyword_share,
                       max_noise, background)


def place_words(keywords: list, others: list, load, minutes: float, seed: int, keyword_share: float,
                max_noise: float, background: np.ndarray) -> tuple[np.ndarray, list[tuple]]:
    """One word per 3 s slot, drawn from `keywords` (a `keyword_share` of the slots) or `others`; load(item) gives
    (word, a 1 s clip). Over `background` noise at a volume drawn per slot from [0, max_noise]."""
    rng = np.random.default_rng(seed)
    slot = int(SLOT_SECONDS * SAMPLE_RATE)
    slots = max(1, int(minutes * 60 / SLOT_SECONDS))
    wave = np.zeros(slots * slot, dtype=np.float32)
    rows = []
    for i in tqdm(range(slots), desc="placing words", unit="word", leave=False, dynamic_ncols=True):
        pool = keywords if rng.random() < keyword_share else others
        word, audio = load(pool[int(rng.integers(len(pool)))])
        start, end = (int(v) for v in word_bounds(audio[None]))
        at = i * slot + int(rng.uniform(0, MAX_OFFSET_SECONDS) * SAMPLE_RATE)
        wave[at: at + SAMPLE_RATE] += audio.numpy()
        rows.append((word, round((at + start) * 1000 / SAMPLE_RATE), round((at + end) * 1000 / SAMPLE_RATE)))
        if len(background) > slot:
            cut = int(rng.integers(len(background) - slot))
            wave[i * slot: (i + 1) * slot] += background[cut: cut + slot] * rng.uniform(0, max_noise)
    return np.clip(wave, -1, 1), rows


SPEECH = "_speech_"  # the label of a running-speech span: no keyword is counted there
GAP_SECONDS = (0.3, 1.5)


def speech_sources(folder: Path, split: str) -> list[Path]:
    """The long utterances of a folder: in the other-speech layout (librispeech/ inside), its split's
    LibriSpeech files; otherwise every audio file in the folder."""
    from . import other_speech

    if (folder / "librispeech").is_dir():
        return other_speech.files(folder, "librispeech", split)
    if not folder.is_dir():
        raise UserError(f"speech folder not found: {folder}")
    return sorted(p for p in folder.rglob("*") if p.name.lower().endswith((".wav", ".flac")))


def speech_stream(utterances: list, minutes: float | None, seed: int, max_noise: float,
                  background: np.ndarray, load=lambda u: u) -> tuple[np.ndarray, list[tuple]]:
    """Long utterances back to back, 0.3-1.5 s apart, in a seeded order, over background noise at a volume
    drawn per utterance from [0, max_noise]: once through (minutes None) or cycling until `minutes` are
    filled. Each utterance is a row labelled _speech_."""
    if not utterances:
        raise UserError("no long utterances to build a speech stream from")
    rng = np.random.default_rng(seed)
    pieces, rows, at, total = [], [], 0, None if minutes is None else int(minutes * 60 * SAMPLE_RATE)
    order = list(rng.permutation(len(utterances)))
    while True:
        if not order:
            if total is None:
                break
            order = list(rng.permutation(len(utterances)))
        audio = np.asarray(load(utterances[order.pop(0)]), dtype=np.float32)
        gap = np.zeros(int(rng.uniform(*GAP_SECONDS) * SAMPLE_RATE), np.float32)
        piece = np.concatenate([gap, audio])
        if len(background) > len(piece):
            cut = int(rng.integers(len(background) - len(piece)))
            piece = piece + background[cut: cut + len(piece)] * rng.uniform(0, max_noise)
        rows.append((SPEECH, round((at + len(gap)) * 1000 / SAMPLE_RATE), round((at + len(piece)) * 1000 / SAMPLE_RATE)))
        pieces.append(piece)
        at += len(piece)
        if total is not None and at >= total:
            break
    return np.clip(np.concatenate(pieces), -1, 1), rows


VALIDATION_MINUTES = 20


def validation_streams(names: list[str], waves, labels, noise, other_speech_root: str, seed: int,
                       synthetic_others=()) -> list[tuple]:
    """Streams made only from training-side data, for calibration and for choosing best.pt: [(wave tensor,
    truth rows (word, start s, end s))]. The validation clips one word per 3 s slot (70% keywords; the other
    words with other speech's validation words), and other speech's validation sentences back to back, twice
    over (other gaps and noise); the other words alone over louder noise (up to 0.3); `synthetic_others`
    (held-out voices of look-alikes and common words) in as many slots as there are clips, alone over louder
    noise; all over the training part of the noise."""
    import torch

    from . import other_speech

    background = noise.numpy()
    keywords = [(names[y], w) for w, y in zip(waves, labels) if not names[y].startswith("_")]
    others = [(ds.UNKNOWN, w) for w, y in zip(waves, labels) if names[y] == ds.UNKNOWN]
    utterances = []
    if other_speech_root:
        words = other_speech.isolated_words(other_speech_root, "validation",
                                            exclude_words=[n for n in names if not n.startswith("_")])
        others += [(ds.UNKNOWN, w) for w in ds.load_clips([ds.Clip(p, "other") for p in words], desc="other speech")[0]]
        utterances = [u.numpy() for u in other_speech.running_speech(other_speech_root, "validation")]
    streams = []
    # each clip about twice, up to VALIDATION_MINUTES a stream (a small folder gets short streams)
    minutes = min(VALIDATION_MINUTES, 2 * (len(keywords) + len(others)) * SLOT_SECONDS / 60)
    if keywords and others:
        wave, rows = place_words(keywords, others, lambda item: item, minutes, seed, 0.7, 0.1, background)
        streams.append((torch.from_numpy(wave), [(w, a / 1000, b / 1000) for w, a, b in rows]))
    if others:  # other words only, over louder noise (as the keyword-free test stream is built)
        wave, _ = place_words(keywords, others, lambda item: item, minutes, seed + 3, 0.0, 0.3, background)
        streams.append((torch.from_numpy(wave), []))
    if len(synthetic_others):
        items = [(ds.UNKNOWN, w) for w in synthetic_others]
        wave, _ = place_words([], items, lambda item: item, len(items) * SLOT_SECONDS / 60, seed + 5, 0.0, 0.3,
                              background)
        streams.append((torch.from_numpy(wave), []))
    for extra in (1, 2) if utterances else ():
        wave, _ = speech_stream(utterances, None, seed + extra, 0.1, background)
        streams.append((torch.from_numpy(wave), []))
    return streams


def make_speech_stream(folder: str | Path, noise: str | Path | None, minutes: float | None, seed: int = 1,
                       max_noise: float = 0.1, split: str = "testing") -> tuple[np.ndarray, list[tuple]]:
    """A keyword-free stream of a folder's long utterances over the held-out noise (speech_stream)."""
    check_stream_flags(minutes, 0.0, max_noise)
    if not noise:
        raise UserError("a speech stream needs --noise PATH/_background_noise_ (its held-out part is used)")
    folder = Path(folder)
    utterances = speech_sources(folder, split)
    if not utterances:
        raise UserError(f"{folder}: no .wav or .flac utterances{' in its ' + split + ' split' if (folder / 'librispeech').is_dir() else ''}")
    background = ds.load_noise(noise_files(folder, Path(noise)), part="test").numpy()
    return speech_stream(utterances, minutes, seed, max_noise, background, load=lambda p: read_audio(p).numpy())


def write_stream(wave: np.ndarray, rows: list[tuple], out: Path) -> Path:
    """The audio as 16-bit WAV and the labels as CSV beside it (same name, .csv)."""
    import soundfile as sf

    out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(out), wave, SAMPLE_RATE, subtype="PCM_16")
    labels = out.with_suffix(".csv")
    with labels.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["word", "start_ms", "end_ms"])
        writer.writerows(rows)
    return labels


def read_labels(path: str | Path) -> list[tuple[str, float, float]]:
    """word,start_ms,end_ms rows -> (word, start s, end s); one line for any malformed file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"labels file not found: {path}")
    rows = []
    try:
        with path.open(newline="") as f:
            for row in csv.DictReader(f):
                rows.append((row["word"], float(row["start_ms"]) / 1000, float(row["end_ms"]) / 1000))
    except (KeyError, TypeError, ValueError, UnicodeDecodeError, csv.Error):
        raise UserError(f"{path}: expected CSV rows of word,start_ms,end_ms") from None
    return rows


def build_stream(data: str | None, speech: str | None, minutes: float | None, seed: int, keyword_share: float,
                 max_noise: float, noise: str | None, split: str, keywords: list[str]) -> tuple[np.ndarray, list, str]:
    """`seqapp make-stream`: words in slots (--data) or running speech (--speech); (audio, label rows, what in words)."""
    if bool(data) == bool(speech):
        raise UserError("make-stream needs --data (words in slots) or --speech (running speech), one of them")
    if speech:
        wave, rows = make_speech_stream(speech, noise, minutes, seed, max_noise, split)
        return wave, rows, f"{len(rows)} utterances, no keywords"
    wave, rows = make_stream(data, 10.0 if minutes is None else minutes, seed, keyword_share, max_noise, noise, split,
                             keywords)
    return wave, rows, f"{len(rows)} words ({sum(1 for r in rows if r[0] in keywords)} keywords)"
