"""Spotting your own words: keywords parsed and refused, their look-alikes, synthesis of phrases, recordings from
a (fake) microphone, and a two-keyword spotter trained from synthetic speech that every command runs."""
import json
import shutil
import sys

import numpy as np
import pytest
import soundfile as sf

from conftest import ROOT, assert_one_line_error, make_speech_commands, run_cli, run_main, tone
from seqapp.errors import UserError
from seqapp.speech.voices import pronounce, synthesize, synthetic
from seqapp.speech.data import recordings
from seqapp.speech.data.keywords import parse_keywords

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed "
                                  "(make test installs it)")
KEYWORDS = "computer,cat"


def test_keywords_are_parsed_and_bad_ones_refused():
    assert parse_keywords(" Computer , smart   mirror,lights_on ") == ["computer", "smart mirror", "lights on"]
    for bad, fragment in [("", "empty"), ("computer,,cat", "empty keyword"), ("cat,Cat", "given twice"),
                          ("r2d2", "cannot pronounce"), ("hey!", "cannot pronounce"),
                          ("one two three four five", "too long")]:
        with pytest.raises(UserError, match=fragment):
            parse_keywords(bad)
    assert_one_line_error(run_main("train", "kws", "--keywords", "cat,cat", "--out", "/nonexistent/x"), "given twice")
    assert_one_line_error(run_main("say", "r2d2", "--out", "/nonexistent/x"), "cannot pronounce")


def test_look_alikes_of_a_word_and_a_phrase_share_its_sounds_and_are_never_it():
    found = pronounce.look_alikes("computer")
    assert "commuter" in found and "computer" not in found
    target = pronounce.spoken_pronunciations("computer")[0]
    for text in found:
        assert 0 < min(pronounce.distance(target, p) for p in pronounce.spoken_pronunciations(text)) <= 3, text
    phrase = pronounce.look_alikes("smart mirror")
    assert {"smart", "mirror"} <= set(phrase) and "smart mirror" not in phrase
    assert any(p.endswith(" mirror") and p != "smart mirror" for p in phrase)       # one word swapped
    assert pronounce.look_alikes("snowboy")                                          # not in CMUdict: snow + boy
    negatives = synthetic.negative_texts(["computer"], 30, seed=1)
    assert not any(pronounce.sounds_like(t, ["computer"]) for t in negatives)
    assert set(negatives[::3]) <= set(found)                                         # a third are look-alikes


@needs_espeak
def test_a_phrase_and_its_look_alikes_synthesize_seeded_and_cached(tmp_path):
    clips, which = synthetic.positives(["smart mirror"], 3, seed=2, cache=tmp_path)
    assert clips.shape == (3, 16000) and list(which) == [0, 0, 0]
    made = sorted(tmp_path.rglob("*.flac"))
    again, _ = synthetic.positives(["smart mirror"], 3, seed=2, cache=tmp_path)
    assert sorted(tmp_path.rglob("*.flac")) == made and np.allclose(clips, again, atol=1 / 32768)
    assert len(made) == 3


def spectral_centroid(wave: np.ndarray) -> float:
    power = np.abs(np.fft.rfft(wave)) ** 2
    return float((np.fft.rfftfreq(len(wave), 1 / 16000) * power).sum() / power.sum())


@needs_espeak
def test_a_share_of_the_voices_is_the_neural_one_in_every_accent_pitch_moving_its_formants(tmp_path):
    plain = synthesize.random_voices(200, seed=3)
    assert plain == synthesize.random_voices(200, seed=3, draw=synthesize.VoiceDraw(neural=0))   # the cache holds
    mixed = synthesize.random_voices(200, seed=3, draw=synthesize.VoiceDraw(neural=0.5))
    neural = [v for v in mixed if v.engine == "piper"]
    assert not any(v.engine == "piper" for v in plain) and 70 < len(neural) < 130
    assert {v.name.split("+")[0] for v in neural} == set(synthesize.ESPEAK_ACCENTS)
    assert all(0.8 <= v.pitch <= 1.25 and 0.7 <= v.rate <= 1.4 for v in neural)
    low, high = (synthesize.Voice("piper", "en-us+joe", 1.0, pitch) for pitch in (0.8, 1.25))
    british = synthesize.Voice("piper", "en-gb+joe")
    waves = synthesize.synthesize([(low, "smart mirror"), (high, "smart mirror"), (british, "smart mirror")], tmp_path)
    assert all(0.4 < len(w) / 16000 < 1.6 for w in waves)
    assert abs(len(waves[0]) - len(waves[1])) / 16000 < 0.3               # the same tempo at either pitch
    assert spectral_centroid(waves[1]) > 1.2 * spectral_centroid(waves[0])  # formants up with the pitch
    assert "ɪ" in synthetic.phonemes(british, "smart mirror")


@needs_espeak
def test_say_writes_the_voices_and_prints_phonemes(tmp_path):
    r = run_main("say", "smart mirror", "--voices", "2", "--out", tmp_path / "preview", "--synth-cache",
                 tmp_path / "cache", "--look-alikes")
    assert r.returncode == 0, r.stderr
    wavs = sorted((tmp_path / "preview").glob("*.wav"))
    assert len(wavs) == 2 and all(sf.info(w).samplerate == 16000 for w in wavs)
    assert "ɪ" in r.stdout and "look-alikes" in r.stdout and "mirror" in r.stdout.splitlines()[-1]
    r = run_main("say", "smart mirror", "--voices", "2", "--synth-neural", "1", "--out", tmp_path / "neural",
                 "--synth-cache", tmp_path / "cache")
    assert r.returncode == 0, r.stderr
    assert [w.name.split("_")[1] for w in sorted((tmp_path / "neural").glob("*.wav"))] == ["piper", "piper"]
    assert_one_line_error(run_main("say", "cat", "--synth-neural", "2", "--out", tmp_path / "x"), "--synth-neural")


def fake_microphone(monkeypatch, wave):
    from test_stream import FakeInputStream, fake_sounddevice

    FakeInputStream.wave = wave
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice(has_input=True))


def spoken_clips(count: int, seconds: float = 1.5, countdown: float = 0.2) -> np.ndarray:
    """What a microphone hears while someone says a word after each countdown: a tone in every clip."""
    pieces = []
    for i in range(count):
        pieces += [np.zeros(int(countdown * 16000), np.float32), tone(400 + 50 * i, seconds)]
    return np.concatenate(pieces)


def test_record_writes_clips_that_recordings_reads(tmp_path, monkeypatch):
    fake_microphone(monkeypatch, spoken_clips(3))
    out = tmp_path / "clips"
    r = run_main("record", "--word", "Smart Mirror", "--count", "3", "--countdown", "0.2", "--out", out)
    assert r.returncode == 0, r.stderr
    files = sorted((out / "smart_mirror").glob("*.wav"))
    assert [f.name for f in files] == [f"smart_mirror_00{i}.wav" for i in (1, 2, 3)]
    assert all(abs(sf.info(f).duration - 1.5) < 1e-3 for f in files) and "dB" in r.stderr
    clips, which = recordings.load(out, ["computer", "smart mirror"])
    assert clips.shape == (3, 16000) and list(which) == [1, 1, 1]
    fake_microphone(monkeypatch, np.zeros(16000 * 10, np.float32))                  # a muted microphone
    assert_one_line_error(run_main("record", "--word", "cat", "--count", "2", "--countdown", "0", "--out", out),
                          "heard nothing")
    (out / "dog").mkdir()
    with pytest.raises(UserError, match="not one of the keywords"):
        recordings.load(out, ["computer", "smart mirror"])
    from test_stream import fake_sounddevice
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice(has_input=False))
    assert_one_line_error(run_main("record", "--word", "cat", "--out", out), "no usable audio input device")


@pytest.fixture(scope="module")
def custom_run(tmp_path_factory):
    """A two-keyword streaming spotter trained a few steps on synthesized speech with two recordings, through
    `train.py kws --keywords`, and a stream of its keywords (synthesized) with other words."""
    import types

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (make test installs it)")
    tmp = tmp_path_factory.mktemp("custom")
    root = make_speech_commands(tmp / "sc", per_word=6, with_lists=True)        # its cat/ is now a keyword
    mine = tmp / "mine" / "computer"
    mine.mkdir(parents=True)
    for i in range(2):
        sf.write(mine / f"computer_{i:03d}.wav", tone(600 + 40 * i, 1.2), 16000)
    other = tmp / "other"                                                 # other speech, holding a keyword too
    for folder, count, seconds in (("librispeech", 12, 3.0), ("wake_words/computer", 4, 1.0), ("wake_words/alexa", 4, 1.0)):
        (other / folder).mkdir(parents=True)
        for i in range(count):
            name = f"{100 + i}-1-{i}.flac" if folder == "librispeech" else f"{i}.flac"
            sf.write(other / folder / name, tone(250 + 30 * i, seconds), 16000)
    out, cache = tmp / "run", tmp / "cache"
    train = run_main("train", "kws", "--keywords", KEYWORDS, "--data", root, "--recordings", tmp / "mine",
                     "--other-speech", other, "--synth-positives", "4", "--synth-negatives", "9", "--validation-voices",
                     "3", "--synth-cache", cache, "--mining-rounds", "0", "--verifier", "", "--steps", "12",
                     "--eval-every", "12", "--hidden", "16", "--layers", "1", "--batch-size", "8",
                     "--words-per-sequence", "2", "--out", out, "--device", "cpu")
    assert train.returncode == 0, train.stderr
    words = tmp / "words"                                                  # a stream: its keywords and other words
    for i, (word, wave) in enumerate(zip(["computer", "cat"] * 2, synthetic.as_clips(
            synthetic.synthesize([(v, w) for v, w in zip(synthetic.random_voices(4, 5), ["computer", "cat"] * 2)],
                                 cache)))):
        (words / word).mkdir(parents=True, exist_ok=True)
        sf.write(words / word / f"{i}.wav", wave.numpy(), 16000)
    shutil.copytree(root / "bed", words / "bed")
    made = run_main("make-stream", "--data", words, "--split", "all", "--keywords", KEYWORDS, "--noise",
                    root / "_background_noise_", "--minutes", "0.3", "--out", tmp / "test.wav")
    assert made.returncode == 0, made.stderr
    return types.SimpleNamespace(out=out, ckpt=out / "best.pt", wav=tmp / "test.wav", csv=tmp / "test.csv",
                                 tmp=tmp, stderr=train.stderr)


def test_a_custom_spotter_knows_its_own_words_and_leaves_them_out_of_the_negatives(custom_run):
    from seqapp import checkpoint

    ckpt = checkpoint.load(custom_run.ckpt, task="kws")
    assert ckpt["task_state"]["labels"] == ["computer", "cat", "_silence_", "_unknown_"]
    assert f"cat in {custom_run.tmp / 'sc'}" in custom_run.stderr                   # a Speech Commands word ...
    assert f"computer in {custom_run.tmp / 'other'}" in custom_run.stderr           # ... and a wake word
    assert custom_run.stderr.count("left out of the negatives") >= 2
    rows = custom_run.csv.read_text().splitlines()[1:]
    assert {r.split(",")[0] for r in rows} <= {"computer", "cat", "bed"} and any(r.startswith("computer,") for r in rows)


def test_every_command_runs_a_custom_spotter_with_its_class_names(custom_run, monkeypatch):
    flags = ("--checkpoint", custom_run.ckpt, "--threshold", "0.1")      # low: a model of 12 steps fires at all
    spot = run_main("spot", *flags, "--stream", custom_run.wav, "--json")
    assert spot.returncode == 0, spot.stderr
    labels = [json.loads(line)["label"] for line in spot.stdout.splitlines()]
    assert labels and set(labels) <= {"computer", "cat"}
    fake_microphone(monkeypatch, sf.read(custom_run.wav, dtype="float32")[0])
    heard = run_main("listen", *flags, "--json")
    assert heard.returncode == 0 and heard.stdout == spot.stdout
    ev = run_main("evaluate", "kws", *flags, "--stream", custom_run.wav, "--labels", custom_run.csv, "--json")
    assert ev.returncode == 0, ev.stderr
    result = json.loads(ev.stdout)
    assert result["keywords"] == sum(1 for r in custom_run.csv.read_text().splitlines()[1:]
                                     if r.split(",")[0] in ("computer", "cat"))
    onnx = custom_run.tmp / "custom.onnx"
    r = run_main("export", "--checkpoint", custom_run.ckpt, "--out", onnx)
    assert r.returncode == 0, r.stderr
    import onnxruntime as ort
    meta = json.loads(ort.InferenceSession(str(onnx)).get_modelmeta().custom_metadata_map["seqapp"])
    assert meta["labels"] == ["computer", "cat", "_silence_", "_unknown_"]
    theirs = run_cli(ROOT / "examples" / "spot_stream_onnx.py", onnx, custom_run.wav, "--threshold", "0.1")
    ours = run_main("spot", *flags, "--stream", custom_run.wav)
    assert theirs.returncode == 0, theirs.stderr
    assert theirs.stdout == ours.stdout
