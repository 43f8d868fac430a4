"""Keyword spotting: audio loading, layout and splits, features and augmentation, pooling, and the CLI."""
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import assert_one_line_error, make_speech_commands, run_cli, run_main, tone
from seqapp.errors import UserError
from seqapp.speech.data import dataset as ds
from seqapp.speech.data.audio import load_audio
from seqapp.speech.models.features import FeatureConfig, FrontEnd
from seqapp.speech.models.spotters import KeywordSpotter, KWSModelConfig
from seqapp.speech.settings import KWSConfig


@pytest.mark.parametrize("rate,channels,subtype,seconds", [
    (16000, 1, "PCM_16", 1.0), (8000, 1, "PCM_16", 0.5), (44100, 2, "PCM_24", 1.0),
    (48000, 2, "FLOAT", 2.5), (22050, 1, "PCM_U8", 1.0)])
def test_load_audio_any_rate_and_channels(tmp_path, rate, channels, subtype, seconds):
    wave = tone(440, seconds, rate)
    if channels == 2:
        wave = np.stack([wave, wave], axis=1)
    path = tmp_path / ("clip.wav" if subtype != "PCM_24" else "clip.flac")
    sf.write(path, wave, rate, subtype=subtype)
    out = load_audio(path)
    assert out.shape == (16000,) and out.dtype == torch.float32
    # a 440 Hz tone stays a 440 Hz tone after resampling
    spectrum = torch.fft.rfft(out[4000:12000] if seconds >= 1 else out[6000:10000]).abs()
    peak_hz = spectrum.argmax().item() * 16000 / (8000 if seconds >= 1 else 4000)
    assert abs(peak_hz - 440) < 10


def test_load_audio_pads_short_clips_evenly_and_crops_long_ones_to_the_loud_part(tmp_path):
    sf.write(tmp_path / "short.wav", np.ones(8000, dtype=np.float32) * 0.5, 16000)
    short = load_audio(tmp_path / "short.wav")
    assert short[:4000].abs().sum() == 0 and short[12000:].abs().sum() == 0 and short[4000:12000].min() > 0.4
    long = np.zeros(48000, dtype=np.float32)
    long[30000:34000] = 0.5
    sf.write(tmp_path / "long.wav", long, 16000)
    assert load_audio(tmp_path / "long.wav").abs().sum() > 0


@pytest.mark.parametrize("content,fragment", [
    (b"", "empty"), (b"hello, I am text" * 20, "not a WAV"),
    (None, "truncated"), (b"RIFF\x24\x00\x00\x00WAVEfmt ", "truncated")])
def test_bad_audio_names_the_file(tmp_path, content, fragment):
    path = tmp_path / "bad.wav"
    if content is None:
        sf.write(path, tone(440), 16000)
        path.write_bytes(path.read_bytes()[:20000])
    else:
        path.write_bytes(content)
    with pytest.raises(UserError, match=fragment) as err:
        load_audio(path)
    assert "bad.wav" in str(err.value)


def test_layout_splits_from_lists_and_by_speaker_hash(tmp_path):
    root = make_speech_commands(tmp_path / "sc", with_lists=True)
    clips, noise = ds.scan(root)
    assert len(noise) == 1 and len(clips) == 12 * 6
    splits = ds.assign_splits(root, clips)
    assert len(splits["validation"]) == len(splits["testing"]) == 12  # exactly the listed clips
    (root / "validation_list.txt").unlink()
    (root / "testing_list.txt").unlink()
    extra = root / "yes" / f"{clips[0].speaker}_nohash_1.wav"  # a second clip of one speaker
    sf.write(extra, tone(300), 16000)
    clips, _ = ds.scan(root)
    by_hash = ds.assign_splits(root, clips)
    for split, members in by_hash.items():
        for other, others in by_hash.items():
            if other != split:
                assert not {c.speaker for c in members} & {c.speaker for c in others}


def test_hash_split_is_the_documented_rule():
    # which_set() from the dataset README, spelled out for one name
    import hashlib

    clip = ds.Clip(ds.Path("yes/0a7c2a8d_nohash_0.wav"), "yes")
    percent = (int(hashlib.sha1(b"0a7c2a8d").hexdigest(), 16) % (2**27)) * (100.0 / (2**27 - 1))
    expected = "validation" if percent < 10 else "testing" if percent < 20 else "training"
    assert ds.hash_split(clip) == expected


def test_twelve_class_labels():
    names = ds.class_names(12)
    assert names[-2:] == ["_silence_", "_unknown_"]
    assert ds.label_of("bed", names) == names.index("_unknown_")
    assert ds.label_of("on", names) == names.index("on")
    assert ds.label_of("bed", ds.class_names(35)) == ds.class_names(35).index("bed")


def test_empty_or_malformed_folders_fail_clearly(tmp_path):
    with pytest.raises(UserError, match="not found"):
        ds.scan(tmp_path / "missing")
    (tmp_path / "empty" / "yes").mkdir(parents=True)
    with pytest.raises(UserError, match="no word folders"):
        ds.scan(tmp_path / "empty")


def test_front_end_shapes_and_augmentation_only_in_training():
    front = FrontEnd(FeatureConfig(frame_stack=1))
    front.set_noise(torch.randn(50000))
    wave = torch.from_numpy(np.stack([tone(300), tone(900)]))
    front.eval()
    a, b = front(wave), front(wave)
    assert a.shape == (2, 101, 40)
    torch.testing.assert_close(a, b)  # evaluation is deterministic
    front.train()
    torch.manual_seed(0)
    c = front(wave)
    torch.manual_seed(0)
    d = front(wave)
    torch.manual_seed(1)
    e = front(wave)
    torch.testing.assert_close(c, d)  # seeded: the same draw twice
    assert not torch.allclose(c, a) and not torch.allclose(c, e)


def test_the_equaliser_is_a_bounded_smooth_tilt_of_every_band_over_time():
    front = FrontEnd(FeatureConfig(eq_db=6.0))
    torch.manual_seed(0)
    offsets = front.equaliser(500, 40, "cpu")                                       # dB
    assert offsets.abs().max() <= 6.0 + 1e-4 and offsets.abs().amax(1).mean() > 2
    assert (offsets[:, 1:] - offsets[:, :-1]).abs().max() < 1.5                     # smooth across bands
    wave = 0.1 * torch.randn(2, 8000)
    streaming = FrontEnd(FeatureConfig(eq_db=6.0, normalize="fixed", center=False, freq_masks=0, time_masks=0))
    shift = streaming.raw_features(wave, augment=True) - streaming.raw_features(wave)  # (batch, bands, frames)
    assert shift.abs().max() > 0.1
    assert torch.allclose(shift, shift[:, :, :1].expand_as(shift), atol=1e-4)       # the same in every frame
    with pytest.raises(UserError, match="--eq-db"):
        KWSConfig(eq_db=40).check()


def test_mfcc_features():
    front = FrontEnd(FeatureConfig(features="mfcc", n_mels=20, frame_stack=2)).eval()
    assert front(torch.from_numpy(tone(300))[None]).shape == (1, 50, 40)  # two frames per step


@pytest.mark.parametrize("pooling", ["last", "mean", "attention"])
@pytest.mark.parametrize("cell,bidirectional", [("gru", True), ("lstm", False), ("rnn_relu", True)])
def test_pooling_variants(pooling, cell, bidirectional):
    model = KeywordSpotter(KWSModelConfig(12, cell, 2, 16, 0.0, bidirectional, pooling), FeatureConfig()).eval()
    wave = torch.randn(3, 16000) * 0.1
    logits, weights = model(wave, return_weights=True)
    assert logits.shape == (3, 12)
    if pooling == "attention":
        assert weights.shape == (3, 50)
        torch.testing.assert_close(weights.sum(1), torch.ones(3))
    else:
        assert weights is None


def test_train_evaluate_spot_through_the_cli(tmp_path, speech_commands):
    out = tmp_path / "kws"
    train = run_cli("train.py", "kws", "--data", str(speech_commands), "--out", str(out), "--steps", "40",
                    "--eval-every", "20", "--hidden", "32", "--layers", "1", "--batch-size", "16", "--lr", "5e-3",
                    "--device", "cpu", "--seed", "0")
    assert train.returncode == 0, train.stderr
    for name in ("best.pt", "last.pt", "metrics.jsonl", "curves.png", "config.json"):
        assert (out / name).exists(), name

    ev = run_main("evaluate", "kws", "--checkpoint", out / "best.pt", "--data", speech_commands, "--json")
    assert ev.returncode == 0, ev.stderr
    result = json.loads(ev.stdout)
    assert set(result["per_class"]) == set(ds.class_names(12))
    assert {"precision", "recall", "f1", "support"} <= set(result["per_class"]["yes"])
    assert np.array(result["confusion"]).sum() == result["clips"]
    assert (out / "confusion.png").stat().st_size > 0

    # a clip of the user's: 44.1 kHz stereo, and a folder of clips
    mine = tmp_path / "mine"
    mine.mkdir()
    sf.write(mine / "a.wav", np.stack([tone(300, 1.2, 44100)] * 2, axis=1), 44100)
    sf.write(mine / "b.wav", tone(2100, 0.7, 8000), 8000)
    spot = run_main("spot", "--checkpoint", out / "best.pt", mine, "--top-k", "3", "--json")
    assert spot.returncode == 0, spot.stderr
    labels = json.loads(spot.stdout)
    assert [r["file"].split("/")[-1] for r in labels] == ["a.wav", "b.wav"]
    assert all(len(r["top"]) == 3 and r["label"] == r["top"][0]["label"] for r in labels)
    text = run_main("spot", "--checkpoint", out / "best.pt", mine / "a.wav")
    assert text.returncode == 0 and "a.wav" in text.stdout

    (mine / "bad.wav").write_bytes(b"nope")
    assert_one_line_error(run_main("spot", "--checkpoint", out / "best.pt", mine), "bad.wav")
    assert_one_line_error(run_main("generate", "--checkpoint", out / "best.pt"), "'kws' checkpoint")


def test_evaluate_takes_the_canonical_test_layout(tmp_path, speech_commands):
    out = tmp_path / "kws"
    assert run_main("train", "kws", "--data", speech_commands, "--out", out, "--steps", "4",
                    "--eval-every", "4", "--hidden", "16", "--layers", "1", "--device", "cpu").returncode == 0
    test = tmp_path / "test"
    for word in ("yes", "no", "_silence_", "_unknown_"):
        (test / word).mkdir(parents=True)
        sf.write(test / word / f"{word.strip('_')}_1234abcd_nohash_0.wav.flac", tone(400), 16000)
    ev = run_main("evaluate", "kws", "--checkpoint", out / "best.pt", "--data", test, "--json")
    assert ev.returncode == 0, ev.stderr
    result = json.loads(ev.stdout)
    assert result["set"] == "canonical test set" and result["clips"] == 4
    assert result["per_class"]["_unknown_"]["support"] == 1


@pytest.mark.parametrize("flags,fragment", [(["--classes", "20"], "invalid choice"),
                                            (["--pooling", "max"], "invalid choice"),
                                            (["--hidden", "0"], "--hidden")])
def test_bad_kws_flags(tmp_path, speech_commands, flags, fragment):
    proc = run_main("train", "kws", "--data", speech_commands, "--out", tmp_path / "r", *flags)
    assert_one_line_error(proc, fragment)


def test_missing_kws_folder(tmp_path):
    proc = run_main("train", "kws", "--data", tmp_path / "nowhere", "--out", tmp_path / "r")
    assert_one_line_error(proc, "not found")


def test_thirty_five_class_batches(speech_commands):
    from seqapp.speech.settings import KWSConfig
    from seqapp.speech.training.tasks import KWSTask

    task = KWSTask(KWSConfig(data=str(speech_commands), classes=35, batch_size=32, hidden=8, layers=1))
    waves, labels = task.train_batch(0, 0, 1)
    assert waves.shape == (32, 16000) and int(labels.max()) < 35
    assert "_silence_" not in task.names and task.names[int(labels[0])] in ds.WORDS_35
    assert {task.names[int(y)] for y in labels} <= {"yes", "no", "up", "down", "left", "right", "on", "off",
                                                    "stop", "go", "bed", "cat"}  # only words that have clips


def test_batches_are_a_function_of_the_step(speech_commands):
    from seqapp.speech.settings import KWSConfig
    from seqapp.speech.training.tasks import KWSTask

    task = KWSTask(KWSConfig(data=str(speech_commands), batch_size=16, hidden=8, layers=1))
    a, b, c = task.train_batch(3, 0, 1), task.train_batch(3, 0, 1), task.train_batch(4, 0, 1)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and not torch.equal(a[0], c[0])
    halves = [task.train_batch(3, r, 2) for r in (0, 1)]  # two ranks split the same global batch
    assert torch.equal(torch.cat([h[1] for h in halves]), a[1])
    silence = task.names.index("_silence_")
    counts = np.bincount(np.concatenate([task.train_batch(s, 0, 1)[1].numpy() for s in range(40)]), minlength=12)
    assert 0.04 < counts[silence] / counts.sum() < 0.18  # about 10% silence
