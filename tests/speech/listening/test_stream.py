"""Streaming keyword spotting: chunk invariance, carried state, test streams, the decision layer, scoring,
bad streams, the microphone (faked), and train -> make-stream -> evaluate --stream -> spot --stream."""
import io
import json
import struct
import sys
import types

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import (WORD_TONES, assert_one_line_error, make_speech_commands, memory_capped, run_cli, run_main,
                      tone)
from seqapp import checkpoint
from seqapp.encoder import CELLS
from seqapp.errors import UserError
from seqapp.speech.listening.decision import DecisionConfig, DecisionLayer, Detection, detect
from seqapp.speech.data.streams import make_stream
from seqapp.speech.listening.stream import SpotterStream, step_times
from seqapp.speech.data.sources import file_blocks, pipe_blocks
from seqapp.speech.listening.scoring import score_detections
from seqapp.speech.settings import KWSConfig, build_model, model_from_checkpoint


def streaming_model(cell: str):
    torch.manual_seed(0)
    model = build_model(KWSConfig(streaming=True, cell=cell, layers=2, hidden=16)).eval()
    model.frontend.mean.fill_(-4.0)
    model.frontend.std.fill_(3.0)
    return model


def stream_posteriors(model, wave: torch.Tensor, chunk: int) -> torch.Tensor:
    stream = SpotterStream(model)
    return torch.cat([stream.push(wave[i: i + chunk]) for i in range(0, len(wave), chunk)])


@pytest.mark.parametrize("cell", CELLS)
def test_any_chunking_gives_the_posteriors_of_the_whole_recording(cell):
    model = streaming_model(cell)
    wave = torch.from_numpy(tone(700, seconds=2.0) + 0.05 * np.random.default_rng(0).standard_normal(32000)
                            .astype(np.float32))
    with torch.no_grad():
        whole = torch.softmax(model(wave[None])[0], dim=-1)
    assert len(whole) == 98  # (32000 - 512) // 160 + 1 = 197 frames, two per step
    for chunk in (160, 1600, 16000, len(wave), 333):  # 10 ms, 100 ms, 1 s, whole, and a ragged size
        torch.testing.assert_close(stream_posteriors(model, wave, chunk), whole, atol=1e-5, rtol=1e-4)
    short = wave[:4000]  # one sample at a time, on a quarter second to keep the test fast
    torch.testing.assert_close(stream_posteriors(model, short, 1), whole[: len(stream_posteriors(model, short, 4000))],
                               atol=1e-5, rtol=1e-4)


def test_a_window_head_streams_in_any_chunking_and_forgets_what_is_outside_its_window():
    torch.manual_seed(0)
    model = build_model(KWSConfig(streaming=True, window=5, bidirectional=True, layers=1, hidden=16)).eval()
    model.frontend.mean.fill_(-4.0)
    model.frontend.std.fill_(3.0)
    rng = np.random.default_rng(0)
    wave = torch.from_numpy(tone(700, seconds=2.0) + 0.05 * rng.standard_normal(32000).astype(np.float32))
    with torch.no_grad():
        whole = torch.softmax(model(wave[None])[0], dim=-1)
    for chunk in (160, 333, 16000):
        torch.testing.assert_close(stream_posteriors(model, wave, chunk), whole, atol=1e-5, rtol=1e-4)
    changed = wave.clone()
    changed[:16000] = torch.from_numpy(0.3 * rng.standard_normal(16000).astype(np.float32))
    with torch.no_grad():
        after = torch.softmax(model(changed[None])[0], dim=-1)
    # step t reads steps t-4..t, whose frames start at sample 320 (t - 4): from step 54 on, none reads the change
    torch.testing.assert_close(after[54:], whole[54:], atol=1e-6, rtol=0)
    assert not torch.allclose(after[:50], whole[:50], atol=1e-3)


def test_state_is_carried_across_pushes_and_matters():
    model = streaming_model("gru")
    wave = torch.from_numpy(tone(300, seconds=1.0) + tone(1500, seconds=1.0) * 0.5)
    carried = stream_posteriors(model, wave, 8000)
    fresh = SpotterStream(model)
    fresh.push(wave[:8000])
    reset = SpotterStream(model)  # a new stream that starts where the old one left its samples and frames
    reset.samples, reset.frames, reset.steps = fresh.samples, fresh.frames, fresh.steps
    after_reset = reset.push(wave[8000:])
    assert not torch.allclose(after_reset, carried[-len(after_reset):], atol=1e-4)  # the state holds information
    assert torch.equal(SpotterStream(model).times(0), torch.zeros(0))
    stream = SpotterStream(model)
    stream.push(wave)
    assert stream.times(1).item() == pytest.approx(step_times(model, [stream.steps - 1]).item())


def test_make_stream_labels_match_where_the_words_are(tmp_path):
    root = make_speech_commands(tmp_path / "sc", per_word=6, with_lists=True)
    wave, rows = make_stream(root, minutes=0.5, seed=3, max_noise=0.0)
    assert len(wave) == 10 * 3 * 16000 and len(rows) == 10
    again, _ = make_stream(root, minutes=0.5, seed=3, max_noise=0.0)
    assert np.array_equal(wave, again)  # seeded
    for i, (word, start_ms, end_ms) in enumerate(rows):
        assert i * 3000 <= start_ms < end_ms <= i * 3000 + 3000  # one word per 3 s slot
        assert word in WORD_TONES
        segment = wave[start_ms * 16: end_ms * 16]
        spectrum = np.abs(np.fft.rfft(segment))
        assert abs(np.fft.rfftfreq(len(segment), 1 / 16000)[spectrum.argmax()] - WORD_TONES[word]) < 0.05 * WORD_TONES[word]
        outside = np.concatenate([wave[i * 48000: start_ms * 16 - 320], wave[end_ms * 16 + 320: (i + 1) * 48000]])
        assert np.abs(outside).max() < 0.05 * np.abs(segment).max()  # silent around the labelled word
    keyword_free, rows = make_stream(root, minutes=0.5, seed=3, keyword_share=0.0)
    assert {w for w, _, _ in rows} <= {"bed", "cat"}
    with pytest.raises(UserError, match="--minutes 100000 is too long"):
        make_stream(root, minutes=100_000)


def detection(label, time):
    return Detection(label, time, 0.9)


def test_scorer_counts_hits_wrong_words_false_alarms_and_tolerance_edges():
    truth = [("yes", 10.0, 10.5), ("no", 20.0, 20.6), ("bed", 30.0, 30.4), ("up", 40.0, 40.5)]
    found = [detection("yes", 9.5),        # 0.5 s before the start: the edge, a hit
             detection("yes", 11.0),       # the same word again: already found, a false alarm
             detection("up", 20.5),        # another keyword over "no": a wrong word
             detection("stop", 30.2),      # over a non-keyword: a false alarm
             detection("up", 41.26)]       # 0.76 s after the end: too late, a false alarm
    result = score_detections(found, truth, seconds=3600)
    assert result["keywords"] == 3 and result["found"] == 1 and result["wrong_word"] == 1
    assert result["false_alarms"] == 3 and result["false_alarms_per_hour"] == 3
    assert result["latency_median_s"] == pytest.approx(-1.0)
    assert score_detections([detection("up", 41.25)], truth, 3600)["found"] == 1  # 0.75 s after: still a hit


def test_decision_layer_online_equals_offline_and_suppresses():
    names = ["yes", "no", "_silence_", "_unknown_"]
    rng = np.random.default_rng(0)
    probs = np.tile([0.0, 0.0, 1.0, 0.0], (400, 1))
    for at, word in ((50, 0), (60, 0), (200, 1), (300, 3)):  # a keyword held 30 steps, again 10 steps later
        probs[at: at + 30] = np.eye(4)[word] * 0.95 + 0.0125
    probs = (probs + rng.uniform(0, 0.02, probs.shape)) / 1.04
    times = np.arange(400) * 0.02
    cfg = DecisionConfig(threshold=0.7)
    layer = DecisionLayer(names, cfg, 0.02)
    online = [d for t, p in zip(times, probs) if (d := layer.update(t, p)) is not None]
    offline = detect(times, probs, names, cfg, 0.02)
    assert [(d.label, d.time) for d in online] == [(d.label, d.time) for d in offline]
    assert [d.label for d in offline] == ["yes", "no"]  # one per spoken keyword, none for _unknown_


def wav_stream_bytes(wave, rate=16000, subtype="PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, wave, rate, format="WAV", subtype=subtype)
    return buf.getvalue()


@memory_capped(extra_mb=400)
def test_pipes_read_raw_pcm_and_wav_at_any_rate_like_files(tmp_path):
    wave = tone(1000, seconds=1.5, rate=44_101)
    path = tmp_path / "long.wav"
    sf.write(path, wave, 44_101, subtype="PCM_16")
    from_file = np.concatenate(list(file_blocks(path)))
    from_pipe = np.concatenate(list(pipe_blocks(io.BytesIO(path.read_bytes()))))
    assert abs(len(from_file) - 24000) <= 2 and np.allclose(from_pipe, from_file, atol=1e-6)
    pcm = (tone(500, 0.5) * 32767).astype("<i2").tobytes()
    raw = np.concatenate(list(pipe_blocks(io.BytesIO(pcm))))
    assert len(raw) == 8000 and np.allclose(raw, tone(500, 0.5), atol=1e-4)


@memory_capped(extra_mb=400)
@pytest.mark.parametrize("data,fragment", [
    (b"", "empty"),
    (b"\x01\x02\x03", "middle of a sample"),
    (b"fLaC\x00\x00\x00\x22" + bytes(40), "FLAC cannot be read from a pipe"),
    (b"RIFF\x24\x00\x00\x00WAVEdata\x00\x00\x00\x00", "data before its fmt"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x01\x00\x00\x00", "truncated"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + struct.pack("<HHIIHH", 1, 1, 0, 0, 2, 16) + b"data\x00\x00\x00\x00",
     "unsupported sample rate 0"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + struct.pack("<HHIIHH", 1, 1, 16000, 0, 3, 24) + b"data",
     "unsupported WAV encoding"),
    (b"RIFF\x24\x00\x00\x00WAVEjunk\xff\xff\xff\x7f", "implausible"),
])
def test_bad_pipes_are_one_line_errors(data, fragment):
    with pytest.raises(UserError, match=fragment):
        list(pipe_blocks(io.BytesIO(data)))


@memory_capped(extra_mb=400)
def test_bad_files_for_streaming(tmp_path):
    (tmp_path / "not.wav").write_bytes(b"hello, not audio at all")
    (tmp_path / "empty.flac").write_bytes(b"")
    for name, fragment in (("not.wav", "not a WAV"), ("empty.flac", "empty"), ("missing.wav", "not found")):
        with pytest.raises(UserError, match=fragment):
            list(file_blocks(tmp_path / name))


@pytest.fixture(scope="module")
def stream_run(tmp_path_factory):
    """A tiny streaming model trained through the real command line, and a labelled test stream."""
    tmp = tmp_path_factory.mktemp("stream")
    root = make_speech_commands(tmp / "sc", per_word=8, with_lists=True)
    out = tmp / "run"
    train = run_cli("train.py", "kws", "--data", str(root), "--streaming", "--steps", "40", "--eval-every", "20",
                    "--hidden", "24", "--layers", "1", "--batch-size", "8", "--words-per-sequence", "2",
                    "--out", str(out), "--device", "cpu")
    assert train.returncode == 0, train.stderr
    made = run_main("make-stream", "--data", root, "--minutes", "0.3", "--out", tmp / "test.wav")
    assert made.returncode == 0, made.stderr
    return types.SimpleNamespace(root=root, ckpt=out / "best.pt", wav=tmp / "test.wav", csv=tmp / "test.csv", tmp=tmp)


def test_train_make_stream_evaluate_and_spot(stream_run):
    ev = run_main("evaluate", "kws", "--checkpoint", stream_run.ckpt, "--stream", stream_run.wav,
                  "--labels", stream_run.csv, "--threshold", "0.3", "--json")
    assert ev.returncode == 0, ev.stderr
    result = json.loads(ev.stdout)
    assert result["keywords"] == sum(1 for line in stream_run.csv.read_text().splitlines()[1:]
                                     if line.split(",")[0] in WORD_TONES and line.split(",")[0] not in ("bed", "cat"))
    assert len(result["sweep"]) > 5 and (stream_run.wav.parent / "test_sweep.png").exists()
    spot = run_main("spot", "--checkpoint", stream_run.ckpt, "--stream", stream_run.wav, "--threshold", "0.3", "--json")
    assert spot.returncode == 0, spot.stderr
    detections = [json.loads(line) for line in spot.stdout.splitlines()]
    assert all({"label", "time", "score"} <= set(d) for d in detections)
    assert len(detections) == result["found"] + result["wrong_word"] + result["false_alarms"]  # the same layer
    clips = run_main("evaluate", "kws", "--checkpoint", stream_run.ckpt, "--data", stream_run.root, "--json")
    assert clips.returncode == 0 and 0 <= json.loads(clips.stdout)["accuracy"] <= 1
    piped = run_cli("-m", "seqapp", "spot", "--checkpoint", str(stream_run.ckpt), "--stream", "-",
                    "--threshold", "0.3", "--json", input_bytes=stream_run.wav.read_bytes())
    assert piped.returncode == 0, piped.stderr
    assert [json.loads(line) for line in piped.stdout.splitlines()] == detections


def test_a_window_head_trains_on_a_few_steps_of_each_sequence_and_spots(tmp_path):
    root = make_speech_commands(tmp_path / "sc", per_word=8, with_lists=True)
    out = tmp_path / "run"
    train = run_cli("train.py", "kws", "--data", str(root), "--streaming", "--window", "6", "--bidirectional",
                    "--window-steps", "4", "--steps", "40", "--eval-every", "40", "--hidden", "16", "--layers", "1",
                    "--batch-size", "8", "--words-per-sequence", "2", "--out", str(out), "--device", "cpu")
    assert train.returncode == 0, train.stderr
    losses = [r["loss"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
              if r["split"] == "train"]
    assert losses[-1] < losses[0]
    model, _ = model_from_checkpoint(checkpoint.load(out / "best.pt"))
    assert model.cfg.window == 6 and model.encoder.config.bidirectional
    assert run_main("make-stream", "--data", root, "--minutes", "0.2", "--out", tmp_path / "test.wav").returncode == 0
    spot = run_main("spot", "--checkpoint", out / "best.pt", "--stream", tmp_path / "test.wav", "--json")
    assert spot.returncode == 0, spot.stderr
    with pytest.raises(UserError, match="--window"):
        KWSConfig(window=16).check()


def test_bad_stream_inputs_through_the_cli(stream_run, tmp_path):
    ckpt = stream_run.ckpt
    (tmp_path / "junk.wav").write_bytes(b"RIFF....WAVEjunk")
    assert_one_line_error(run_main("spot", "--checkpoint", ckpt, "--stream", tmp_path / "junk.wav"), "junk.wav")
    assert_one_line_error(run_main("spot", "--checkpoint", ckpt, "--stream", tmp_path / "none.wav"), "not found")
    assert_one_line_error(run_main("spot", "--checkpoint", ckpt, "--stream", stream_run.wav, "--threshold", "2"),
                          "--threshold")
    assert_one_line_error(run_main("evaluate", "kws", "--checkpoint", ckpt, "--stream", stream_run.wav), "--labels")
    (tmp_path / "bad.csv").write_text("what,ever\n1,2\n")
    assert_one_line_error(run_main("evaluate", "kws", "--checkpoint", ckpt, "--stream", stream_run.wav,
                                   "--labels", tmp_path / "bad.csv"), "word,start_ms,end_ms")
    empty = run_cli("-m", "seqapp", "spot", "--checkpoint", str(ckpt), "--stream", "-", input_bytes=b"")
    assert_one_line_error(empty, "empty")
    clip_model = tmp_path / "clip"
    train = run_main("train", "kws", "--data", stream_run.root, "--steps", "2", "--eval-every", "2", "--hidden", "8",
                     "--layers", "1", "--out", clip_model, "--device", "cpu")
    assert train.returncode == 0, train.stderr
    assert_one_line_error(run_main("spot", "--checkpoint", clip_model / "best.pt", "--stream", stream_run.wav),
                          "clip model", "--streaming")


class FakeInputStream:
    """sounddevice.InputStream that plays a recording through the callback, then stops (as a device would)."""

    wave = None

    def __init__(self, callback, blocksize, **kwargs):
        self.callback, self.blocksize, self.active = callback, blocksize, True

    def __enter__(self):
        for i in range(0, len(self.wave), self.blocksize):
            self.callback(self.wave[i: i + self.blocksize, None], self.blocksize, None, None)
        self.active = False
        return self

    def __exit__(self, *exc):
        return False


def fake_sounddevice(has_input: bool):
    def check_input_settings(**kwargs):
        if not has_input:
            raise ValueError("No input device matching ''")
    return types.SimpleNamespace(check_input_settings=check_input_settings, InputStream=FakeInputStream)


def test_listen_runs_the_same_decisions_on_the_microphone(stream_run, monkeypatch):
    wave, rate = sf.read(stream_run.wav, dtype="float32")
    FakeInputStream.wave = wave
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice(has_input=True))
    heard = run_main("listen", "--checkpoint", stream_run.ckpt, "--threshold", "0.3", "--json")
    assert heard.returncode == 0, heard.stderr
    spot = run_main("spot", "--checkpoint", stream_run.ckpt, "--stream", stream_run.wav, "--threshold", "0.3", "--json")
    assert heard.stdout == spot.stdout
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice(has_input=False))
    assert_one_line_error(run_main("listen", "--checkpoint", stream_run.ckpt), "no usable audio input device")


def test_a_window_head_asked_for_more_loss_steps_than_a_sequence_has_reads_them_all(tmp_path):
    root = make_speech_commands(tmp_path / "sc", per_word=8, with_lists=True)
    train = run_cli("train.py", "kws", "--data", str(root), "--streaming", "--window", "6", "--bidirectional",
                    "--window-steps", "100000", "--steps", "2", "--eval-every", "2", "--hidden", "16", "--layers",
                    "1", "--batch-size", "4", "--words-per-sequence", "1", "--out", str(tmp_path / "run"),
                    "--device", "cpu")
    assert train.returncode == 0, train.stderr
