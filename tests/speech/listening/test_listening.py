"""The parts of a spotter you can leave listening: synthetic speech, look-alike words, mining, the two-stage
decision, calibration to false alarms per hour, the bundle, running-speech streams."""
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import assert_one_line_error, run_main, tone
from seqapp.errors import UserError
from seqapp.speech.training import mining
from seqapp.speech.voices import pronounce, synthesize
from seqapp.speech.listening.calibrate import Evidence, add_stream, calibrate, operating_point
from seqapp.speech.data.dataset import class_names
from seqapp.speech.listening.decision import DecisionConfig, DecisionLayer, detect, smoothed
from seqapp.speech.listening.scoring import score_detections

KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed "
                                  "(make test installs it)")


# --- synthesis -----------------------------------------------------------------------------------------------

@needs_espeak
def test_synthesizer_says_words_and_phrases_at_16k_seeded_and_cached(tmp_path, monkeypatch):
    voices = synthesize.random_voices(4, seed=3, engines=("espeak-ng",))
    assert voices == synthesize.random_voices(4, seed=3, engines=("espeak-ng",))
    assert voices != synthesize.random_voices(4, seed=4, engines=("espeak-ng",))
    requests = [(voices[0], "off"), (voices[1], "smart mirror"), (voices[2], "off")]
    waves = synthesize.synthesize(requests, tmp_path / "cache")
    assert all(w.dtype == np.float32 for w in waves)
    one, two = len(waves[0]) / 16000, len(waves[1]) / 16000
    assert 0.1 < one < 1.2 and one < two < 2.5          # a word; two words take longer
    assert len(list((tmp_path / "cache").rglob("*.flac"))) == 3

    def no_synthesizer(*args, **kwargs):
        raise AssertionError("the cache should have answered")
    monkeypatch.setattr(subprocess, "run", no_synthesizer)
    again = synthesize.synthesize(requests, tmp_path / "cache")
    assert all(np.allclose(a, b, atol=1 / 32768) for a, b in zip(waves, again))


@needs_espeak
def test_synthetic_voices_speak_faster_only_when_asked():
    from seqapp.speech.settings import KWSConfig

    usual = synthesize.random_voices(300, seed=3)
    fast = synthesize.random_voices(300, seed=3, draw=synthesize.VoiceDraw(fastest=2.0))
    assert 0.7 <= min(v.rate for v in usual) and max(v.rate for v in usual) <= 1.4
    assert max(v.rate for v in fast) > 1.8 and np.median([v.rate for v in fast]) > 1.2
    assert [(v.name, v.pitch) for v in fast] == [(v.name, v.pitch) for v in usual]   # the same voices, faster
    with pytest.raises(UserError, match="--synth-rate-max"):
        KWSConfig(synth_rate_max=0.5).check()


@needs_espeak
def test_validation_negatives_are_held_out_voices_in_a_keyword_free_stream(tmp_path, monkeypatch):
    from seqapp.speech.data import streams as make_stream
    from seqapp.speech.voices import synthetic
    from seqapp.speech.settings import KWSConfig
    from seqapp.speech.training.sources import validation_negatives

    asked = []
    monkeypatch.setattr(synthetic, "synthesize", lambda requests, cache, desc="": asked.append(requests) or
                        [np.full(8000, 0.1, np.float32) for _ in requests])
    cfg = KWSConfig(streaming=True, synth_negatives=200, validation_negatives=200, synth_cache=str(tmp_path))
    held_out = validation_negatives(cfg, NAMES)
    synthetic.negatives(KEYWORDS, cfg.synth_negatives, cfg.seed, cfg.synth_cache)   # what training draws
    validation, training = asked
    assert held_out.shape == (200, 16000)
    assert not {v for v, _ in validation} & {v for v, _ in training}          # no training voice
    assert not any(pronounce.sounds_like(text, KEYWORDS) for _, text in validation)
    assert len(validation_negatives(KWSConfig(streaming=True), NAMES)) == 0

    noise = torch.zeros(16000 * 10)
    waves, labels = torch.zeros(4, 16000), np.array([NAMES.index("yes"), NAMES.index("_unknown_")] * 2)
    plain = make_stream.validation_streams(NAMES, waves, labels, noise, "", seed=1)
    more = make_stream.validation_streams(NAMES, waves, labels, noise, "", seed=1, synthetic_others=held_out)
    assert len(more) == len(plain) + 1
    added = [(w, rows) for w, rows in more if len(w) == 200 * make_stream.SLOT_SECONDS * 16000]
    assert len(added) == 1 and added[0][1] == []                                # keyword-free, a slot per clip


def test_a_missing_synthesizer_is_one_line_saying_how_to_install(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(UserError, match="apt install espeak-ng"):
        synthesize.speak(synthesize.Voice("espeak-ng", "en-us"), "off")


# --- pronunciation -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("keyword", ["off", "right", "no", "stop"])
def test_look_alikes_are_close_in_sound_and_never_the_keyword(keyword):
    found = pronounce.confusables(keyword, KEYWORDS, limit=30)
    assert len(found) >= 5
    assert keyword not in found
    for word in found:
        assert 0 < pronounce.sound_distance(word, keyword) <= 1.0, word
        assert not pronounce.sounds_like(word, KEYWORDS), word   # no homophone: "write" is not a negative of "right"
    assert pronounce.sound_distance("write", "right") == 0


def test_look_alike_examples_from_the_issue():
    assert "of" in pronounce.confusables("off", KEYWORDS)
    assert {"top", "stock"} <= set(pronounce.confusables("stop", KEYWORDS))
    assert "lift" in pronounce.confusables("left", KEYWORDS)


# --- the decision layer with calibrated thresholds and a verifier ---------------------------------------------

NAMES = class_names(12)
STEP = 0.02


def made_up_stream(seed: int = 0, seconds: float = 3600.0, negatives: int = 40, positives: int = 30):
    """Posteriors every 20 ms: mostly _silence_, with `negatives` bumps of `yes` at peaks spread over
    [0.2, 0.95] (false alarms) and `positives` bumps of `yes` at 0.97 where a `yes` is said."""
    rng = np.random.default_rng(seed)
    steps = int(seconds / STEP)
    probs = np.zeros((steps, len(NAMES)), np.float32)
    probs[:, NAMES.index("_silence_")] = 1.0
    times = (np.arange(steps) + 1) * STEP
    slots = rng.permutation(steps // 500 - 2)[: negatives + positives] * 500 + 500
    truth, yes = [], NAMES.index("yes")
    for i, at in enumerate(slots):
        peak = 0.97 if i < positives else 0.2 + 0.75 * (i - positives) / negatives
        probs[at: at + 30, yes] = peak
        probs[at: at + 30, NAMES.index("_silence_")] = 1 - peak
        if i < positives:
            truth.append(("yes", times[at] - 0.3, times[at]))
    return times, probs, truth


def scores_of(times, probs):
    average, counts = smoothed(probs, 25)
    columns = [NAMES.index(k) for k in KEYWORDS]
    return np.where(counts[:, None] >= 3, average[:, columns], 0.0)


@pytest.mark.parametrize("rate", [1.0, 5.0, 20.0])
def test_calibration_gives_the_false_alarms_per_hour_asked_for(rate):
    times, probs, truth = made_up_stream()
    evidence = Evidence(list(KEYWORDS))
    add_stream(evidence, times, scores_of(times, probs), truth)
    point = operating_point(calibrate(evidence), rate)
    assert point["false_alarms_per_hour"] == rate
    detections = detect(times, probs, NAMES, DecisionConfig(thresholds=point["thresholds"]), STEP)
    scored = score_detections(detections, truth, times[-1], KEYWORDS)
    assert scored["found_rate"] == 1.0
    hours = evidence.seconds / 3600
    assert scored["false_alarms"] == int(np.floor(rate * hours + 1e-9))   # exactly the budget, on made-up data
    # a made-up stream of the same kind, other draws: the rate holds to within the count's noise
    times2, probs2, truth2 = made_up_stream(seed=1)
    again = score_detections(detect(times2, probs2, NAMES, DecisionConfig(thresholds=point["thresholds"]), STEP),
                             truth2, times2[-1], KEYWORDS)
    assert abs(again["false_alarms_per_hour"] - rate) <= 3 * np.sqrt(rate) + 1


def test_operating_point_is_the_strictest_at_or_below_the_request():
    cal = {"hours": 1, "points": [{"false_alarms_per_hour": r, "thresholds": {"yes": 1 - r / 100}} for r in (1, 5, 20)]}
    assert operating_point(cal, 5)["false_alarms_per_hour"] == 5
    assert operating_point(cal, 7)["false_alarms_per_hour"] == 5
    assert operating_point(cal, 0.1)["false_alarms_per_hour"] == 1


def test_verifier_runs_only_on_triggers_and_a_detection_needs_both_stages():
    times, probs, truth = made_up_stream(seconds=600, negatives=6, positives=6)
    asked = []

    def verifier(answer):
        def verify(time, label):
            asked.append(time)
            return answer
        return verify

    cfg = DecisionConfig(threshold=0.7, trigger=0.3)
    average = smoothed(probs, 25)[0][:, [NAMES.index(k) for k in KEYWORDS]].max(axis=1)
    for answer, expected in ((0.0, 0), (1.0, None)):
        asked.clear()
        found = detect(times, probs, NAMES, cfg, STEP, verifier(answer))
        assert asked, "the verifier was never asked"
        index = np.searchsorted(times, asked)
        assert (average[index] >= 0.3).all()                    # only where the first stage triggers ...
        assert (average[index] >= 0.7 ** 2 - 1e-9).all()        # ... and the geometric mean could pass
        assert np.diff(asked).min() >= 0.1 - 1e-6               # at most every recheck_ms
        if expected == 0:
            assert found == []                                  # the first stage alone never detects
        else:
            assert len(found) >= 6 and all(d.score >= 0.7 for d in found)
    online = DecisionLayer(NAMES, cfg, STEP, verifier(1.0))
    streamed = [d for d in (online.update(float(t), p) for t, p in zip(times, probs)) if d]
    assert [(d.label, round(d.time, 6)) for d in streamed] == [(d.label, round(d.time, 6)) for d in found]


# --- mining --------------------------------------------------------------------------------------------------

def test_mining_returns_the_windows_where_the_model_fired(monkeypatch):
    wave = torch.from_numpy(np.random.default_rng(0).standard_normal(16000 * 60).astype(np.float32))
    times, probs, truth = made_up_stream(seconds=60, negatives=0, positives=3)
    monkeypatch.setattr(mining, "posteriors", lambda model, w: (times, probs))
    model = type("M", (), {"step_seconds": STEP})()
    fired = mining.firing_times(model, NAMES, wave, threshold=0.5)
    assert len(fired) == 3
    for t, (_, start, end) in zip(sorted(fired), sorted(truth, key=lambda r: r[1])):
        assert end <= t <= end + 0.6                            # each firing follows its bump
    clips, count = mining.mine(model, NAMES, [wave], threshold=0.5)
    assert count == 3 and clips.shape == (3, 16000)
    t = sorted(fired)[0]
    start = int(round((t - mining.WINDOW_BEFORE_S) * 16000))
    assert torch.equal(clips[0], wave[start: start + 16000])
    silence = np.tile(np.eye(len(NAMES), dtype=np.float32)[NAMES.index("_silence_")], (len(times), 1))
    monkeypatch.setattr(mining, "posteriors", lambda model, w: (times, silence))
    assert mining.mine(model, NAMES, [wave], threshold=0.5)[1] == 0   # nothing fires: nothing mined


def test_mined_windows_round_trip_and_junk_is_refused(tmp_path):
    clips = torch.rand(4, 16000)
    path = mining.save_windows(clips, tmp_path / "mined.pt")
    both = mining.save_windows(clips[:1], tmp_path / "mined2.pt", previous=path)
    assert mining.load_windows(both).shape == (5, 16000)
    assert torch.allclose(mining.load_windows(path), clips, atol=1e-3)
    (tmp_path / "junk.pt").write_bytes(b"not a file of windows")
    with pytest.raises(UserError):
        mining.load_windows(tmp_path / "junk.pt")


# --- running-speech streams ----------------------------------------------------------------------------------

def test_make_stream_builds_keyword_free_running_speech_streams(tmp_path, speech_commands):
    speech = tmp_path / "speech"
    speech.mkdir()
    for i in range(3):
        sf.write(speech / f"{i}.flac", tone(200 + 100 * i, seconds=4.0), 16000)
    out = tmp_path / "speech.wav"
    r = run_main("make-stream", "--speech", speech, "--noise", speech_commands / "_background_noise_",
                 "--seed", "3", "--out", out)
    assert r.returncode == 0, r.stderr
    audio, rate = sf.read(out)
    rows = [line.split(",") for line in out.with_suffix(".csv").read_text().splitlines()[1:]]
    assert rate == 16000 and len(rows) == 3 and all(w == "_speech_" for w, _, _ in rows)
    assert 12 <= len(audio) / 16000 <= 12 + 3 * 1.5             # once through, with the gaps
    starts = [int(a) for _, a, _ in rows]
    assert starts == sorted(starts)
    r = run_main("make-stream", "--speech", speech, "--out", out)
    assert r.returncode == 2 and "--noise" in r.stderr
    r = run_main("make-stream", "--out", out)
    assert r.returncode == 2 and "--data" in r.stderr


# --- the listening spotter's recipe, end to end --------------------------------------------------------------

@pytest.fixture(scope="module")
def listening_run(tmp_path_factory):
    """Streaming model, one mining round and a verifier through `train.py kws` (tiny, on tones), and a stream."""
    import json
    import types

    from conftest import make_speech_commands

    tmp = tmp_path_factory.mktemp("listening")
    root = make_speech_commands(tmp / "sc", per_word=8, with_lists=True)
    verifier = tmp / "verifier.json"
    verifier.write_text(json.dumps({"cell": "gru", "layers": 1, "hidden": 8, "bidirectional": True, "steps": 4,
                                    "eval_every": 4, "batch_size": 8}))
    out = tmp / "run"
    train = run_main("train", "kws", "--data", root, "--streaming", "--steps", "30", "--eval-every", "15",
                     "--hidden", "24", "--layers", "1", "--batch-size", "8", "--words-per-sequence", "2",
                     "--mining-rounds", "1", "--mining-steps", "4", "--mining-sentences", "0", "--verifier", verifier,
                     "--synth-cache", tmp / "synth", "--out", out, "--device", "cpu")
    assert train.returncode == 0, train.stderr
    made = run_main("make-stream", "--data", root, "--minutes", "0.3", "--out", tmp / "test.wav")
    assert made.returncode == 0, made.stderr
    return types.SimpleNamespace(root=root, out=out, ckpt=out / "best.pt", wav=tmp / "test.wav", csv=tmp / "test.csv",
                                 tmp=tmp)


def test_the_recipe_leaves_each_stage_and_a_calibrated_two_stage_bundle(listening_run):
    from seqapp import checkpoint
    from seqapp.speech.listening.spotter import load_spotter

    out = listening_run.out
    for stage in ("stream", "round1", "verifier"):
        assert (out / stage / "done.json").is_file() and (out / stage / "best.pt").is_file()
    assert (out / "mined1.pt").is_file()
    ckpt = checkpoint.load(listening_run.ckpt, task="kws")
    assert ckpt["verifier"]["task_state"]["config"]["bidirectional"] is True
    assert {p["false_alarms_per_hour"] for p in ckpt["calibration"]["points"]} >= {1.0, 5.0}
    spotter = load_spotter(listening_run.ckpt, false_alarms_per_hour=5)
    assert spotter.verifier is not None and spotter.decision.trigger == pytest.approx(0.3)
    assert set(spotter.decision.thresholds) == set(KEYWORDS)
    before = listening_run.ckpt.stat().st_mtime_ns
    again = run_main("train", "kws", "--out", out, "--resume")      # its saved settings; every stage is done
    assert again.returncode == 0, again.stderr
    assert "verifier" in checkpoint.load(listening_run.ckpt)
    assert listening_run.ckpt.stat().st_mtime_ns > before           # bundled again, from the same stages
    assert_one_line_error(run_main("train", "kws", "--out", out, "--streaming", "--mining-rounds", "1"), "--resume")


@needs_espeak
def test_a_bundle_recalibrates_against_held_out_synthetic_negatives(listening_run):
    from seqapp import checkpoint

    out, rebundled = listening_run.out, listening_run.tmp / "rebundled.pt"
    stages = ["--stream", out / "round1" / "best.pt", "--verifier", out / "verifier" / "best.pt"]
    r = run_main("bundle", *stages, "--validation-negatives", "20", "--out", rebundled)
    assert r.returncode == 0, r.stderr
    hours = checkpoint.load(rebundled, task="kws")["calibration"]["hours"]
    before = checkpoint.load(listening_run.ckpt, task="kws")["calibration"]["hours"]
    assert hours * 3600 == pytest.approx(before * 3600 + 20 * 3, abs=0.1)  # one more stream: 20 words, 3 s each
    assert_one_line_error(run_main("bundle", *stages, "--validation-negatives", "-1", "--out", rebundled),
                          "--validation-negatives")


def test_two_stage_spotting_is_the_same_from_file_pipe_microphone_and_evaluate(listening_run, monkeypatch):
    import json
    import sys

    from conftest import run_cli
    from test_stream import fake_sounddevice, FakeInputStream

    flags = ("--checkpoint", listening_run.ckpt, "--false-alarms-per-hour", "50")
    spot = run_main("spot", *flags, "--stream", listening_run.wav, "--json")
    assert spot.returncode == 0, spot.stderr
    detections = [json.loads(line) for line in spot.stdout.splitlines()]
    ev = run_main("evaluate", "kws", *flags, "--stream", listening_run.wav, "--labels", listening_run.csv, "--json")
    assert ev.returncode == 0, ev.stderr
    result = json.loads(ev.stdout)
    assert result["two_stage"], result
    assert len(detections) == result["found"] + result["wrong_word"] + result["false_alarms"], (detections, result)
    FakeInputStream.wave = sf.read(listening_run.wav, dtype="float32")[0]
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice(has_input=True))
    heard = run_main("listen", *flags, "--json")
    assert heard.returncode == 0 and heard.stdout == spot.stdout
    piped = run_cli("-m", "seqapp", "spot", *map(str, flags), "--stream", "-", "--json",
                    input_bytes=listening_run.wav.read_bytes())
    assert piped.stdout == spot.stdout
    assert_one_line_error(run_main("spot", *flags, "--threshold", "0.5", "--stream", listening_run.wav), "not both")


def test_a_bundle_exports_with_its_verifier_and_the_example_agrees(listening_run):
    from conftest import ROOT, run_cli

    onnx = listening_run.tmp / "spotter.onnx"
    r = run_main("export", "--checkpoint", listening_run.ckpt, "--out", onnx)
    assert r.returncode == 0, r.stderr
    assert (listening_run.tmp / "spotter.verifier.onnx").is_file() and "verifier" in r.stdout
    assert (listening_run.tmp / "spotter.weights").is_file()  # what both graphs hold (the mel filterbank), once
    files = [listening_run.tmp / f"spotter{suffix}" for suffix in (".onnx", ".verifier.onnx", ".weights")]
    assert f"three files: {sum(f.stat().st_size for f in files) / 1e6:.2f} MB" in r.stdout  # what a user ships
    ours = run_main("spot", "--checkpoint", listening_run.ckpt, "--stream", listening_run.wav, "--threshold", "0.3")
    theirs = run_cli(ROOT / "examples" / "spot_stream_onnx.py", onnx, listening_run.wav, "--threshold", "0.3")
    assert ours.returncode == theirs.returncode == 0, theirs.stderr
    assert theirs.stdout == ours.stdout
    (listening_run.tmp / "spotter.verifier.onnx").unlink()
    missing = run_cli(ROOT / "examples" / "spot_stream_onnx.py", onnx, listening_run.wav)
    assert missing.returncode != 0 and "verifier" in missing.stderr


def test_running_speech_streams_count_every_detection_as_a_false_alarm(listening_run):
    import json

    speech = listening_run.tmp / "speech.wav"
    wave, _ = sf.read(listening_run.wav, dtype="float32")
    sf.write(speech, wave, 16000)
    speech.with_suffix(".csv").write_text("word,start_ms,end_ms\n_speech_,0,%d\n" % (len(wave) // 16))
    ev = run_main("evaluate", "kws", "--checkpoint", listening_run.ckpt, "--stream", speech,
                  "--labels", speech.with_suffix(".csv"), "--threshold", "0.3", "--json")
    assert ev.returncode == 0, ev.stderr
    result = json.loads(ev.stdout)
    assert result["keywords"] == 0 and result["found_rate"] is None
    assert result["false_alarms"] == sum(result["false_alarm_words"].values())
