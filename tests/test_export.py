"""ONNX export: every task and cell that exports agrees with PyTorch in onnxruntime, int8 within its
tolerance, the standalone examples say what seqapp says, and bad requests are one line."""
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import ROOT, TEXT, run_cli, run_main, tone
from seqapp import checkpoint
from seqapp.onnx_export import TOLERANCE, metadata, session
from seqapp.speech.data.dataset import class_names
from seqapp.speech.listening.export import ChunkGraph, chunk_sizes, default_chunk_steps
from seqapp.speech.listening.stream import SpotterStream
from seqapp.speech.settings import KWSConfig, build_model
from seqapp.text.model import LanguageModel
from seqapp.text.task import LMConfig, model_config
from seqapp.text.tokenizer import CharTokenizer

pytest.importorskip("onnxruntime")


def lm_checkpoint(path: Path, cell: str, hidden: int = 32, layers: int = 2, tokenizer=None) -> Path:
    torch.manual_seed(0)
    cfg = LMConfig(cell=cell, hidden=hidden, layers=layers)
    tokenizer = tokenizer or CharTokenizer(TEXT)
    model = LanguageModel(model_config(cfg, tokenizer.vocab_size))
    checkpoint.save({"task": "lm", "task_state": {"config": asdict(cfg), "tokenizer": tokenizer.state()},
                     "model": model.state_dict()}, path)
    return path


def kws_checkpoint(path: Path, streaming: bool, cell: str = "gru", hidden: int = 24, sharpen: float = 1.0,
                   layers: int = 2, features: str = "logmel", window: int = 0, tune_embedding: int = 0) -> Path:
    torch.manual_seed(0)
    cfg = KWSConfig(streaming=streaming, cell=cell, hidden=hidden, layers=layers, features=features, window=window,
                    tune_embedding=tune_embedding)
    model = build_model(cfg.check())
    with torch.no_grad():  # sharpen > 1: near one-hot posteriors, as a trained model's are
        model.classifier.weight.mul_(sharpen)
        for weight in model.frontend.parameters():  # fine-tuned: no longer the installed file's weights
            weight.mul_(1 + 0.2 * torch.rand_like(weight))
    checkpoint.save({"task": "kws", "task_state": {"config": asdict(cfg), "labels": class_names(cfg.classes)},
                     "model": model.state_dict()}, path)
    return path


def export(ckpt: Path, out: Path, *flags) -> str:
    result = run_main("export", "--checkpoint", ckpt, "--out", out, *flags)
    assert result.returncode == 0, result.stderr
    return result.stdout


def chunk_feeds(model, onnx_path: Path) -> dict:
    """One chunk of a tone and zero states: an exported streaming graph's inputs, in their order."""
    meta = metadata(session(onnx_path))
    read = chunk_sizes(model, default_chunk_steps(model))[0]
    samples = tone(700.0, read / 16000)[None].astype(np.float32)
    return {"samples": samples, **{name: np.zeros(shape, np.float32)
                                   for name, shape in zip(meta["inputs"][1:], meta["state_shapes"])}}


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
def test_lm_step_matches_pytorch_over_a_carried_sequence(tmp_path, cell):
    ckpt = lm_checkpoint(tmp_path / "lm.pt", cell)
    out = tmp_path / "lm.onnx"
    assert "difference from PyTorch" in export(ckpt, out)
    from seqapp.text.task import model_from_checkpoint

    model, tokenizer = model_from_checkpoint(checkpoint.load(ckpt))
    sess, meta = session(out), metadata(session(out))
    assert meta["tokenizer"]["chars"] == tokenizer.chars and meta["cell"] == cell
    ids = torch.as_tensor(tokenizer.encode(TEXT[:60]).astype(np.int64)).reshape(4, 15)  # 4 streams, 15 steps
    with torch.no_grad():
        expected, _ = model(ids)                 # the whole sequence at once, in PyTorch
    state = {name: np.zeros((2, 4, 32), np.float32) for name in meta["inputs"][1:]}
    for t in range(15):                          # one step at a time in onnxruntime, the state carried
        logits, *new = sess.run(None, {"tokens": ids[:, t].numpy(), **state})
        state = dict(zip(meta["inputs"][1:], new))
        np.testing.assert_allclose(logits, expected[:, t].numpy(), atol=1e-4)


@pytest.mark.parametrize("cell", ["lstm", "gru"])  # GRU: exported as its step's products, to be int8 at all
def test_lm_int8_is_smaller_and_scores_within_tolerance(tmp_path, cell):
    ckpt = lm_checkpoint(tmp_path / "lm.pt", cell, hidden=96)
    export(ckpt, tmp_path / "fp32.onnx")
    export(ckpt, tmp_path / "int8.onnx", "--int8")
    assert (tmp_path / "int8.onnx").stat().st_size < 0.4 * (tmp_path / "fp32.onnx").stat().st_size
    ids = CharTokenizer(TEXT).encode(TEXT[:400]).astype(np.int64)
    names = ("h", "c") if cell == "lstm" else ("h",)

    def nats(path):
        sess = session(path)
        state = {name: np.zeros((2, 1, 96), np.float32) for name in names}
        total = 0.0
        for t in range(len(ids) - 1):
            logits, *new = sess.run(None, {"tokens": ids[t: t + 1], **state})
            state = dict(zip(names, new))
            z = logits[0].astype(np.float64)
            total += np.log(np.exp(z - z.max()).sum()) + z.max() - z[ids[t + 1]]
        return total / (len(ids) - 1)

    assert abs(nats(tmp_path / "int8.onnx") - nats(tmp_path / "fp32.onnx")) < 0.02  # the documented tolerance


def test_generate_example_prints_what_seqapp_prints(tmp_path):
    ckpt = lm_checkpoint(tmp_path / "lm.pt", "lstm")
    export(ckpt, tmp_path / "lm.onnx")
    flags = ["--prompt", "First", "--length", "120", "--top-k", "8", "--top-p", "0.9", "--seed", "4"]
    ours = run_cli("-m", "seqapp", "generate", "--checkpoint", ckpt, *flags)
    theirs = run_cli(ROOT / "examples" / "generate_onnx.py", tmp_path / "lm.onnx", *flags)
    assert ours.returncode == theirs.returncode == 0, theirs.stderr
    assert theirs.stdout == ours.stdout and len(ours.stdout) > 100


def test_generate_example_decodes_sentencepiece_as_seqapp_does(tmp_path):
    from seqapp.text.tokenizer import SentencePieceTokenizer

    tokenizer = SentencePieceTokenizer.train(lambda: [TEXT + "naïve café — 東京\n"], vocab_size=300)
    ckpt = lm_checkpoint(tmp_path / "lm.pt", "gru", tokenizer=tokenizer)
    export(ckpt, tmp_path / "lm.onnx")
    flags = ["--length", "150", "--temperature", "1.0", "--seed", "2"]  # an untrained model: bytes too
    ours = run_cli("-m", "seqapp", "generate", "--checkpoint", ckpt, *flags)
    theirs = run_cli(ROOT / "examples" / "generate_onnx.py", tmp_path / "lm.onnx", *flags)
    assert ours.returncode == theirs.returncode == 0, theirs.stderr
    assert theirs.stdout == ours.stdout and len(ours.stdout) > 100


@pytest.mark.parametrize("cell, features", [("gru", "logmel"), ("lstm", "logmel"), ("rnn_tanh", "logmel"),
                                            ("gru", "embedding")])
def test_clip_spotter_with_its_front_end_matches_pytorch(tmp_path, cell, features):
    # one layer: the exporter unrolls a bidirectional simple RNN step by step, and a second layer doubles that
    ckpt = kws_checkpoint(tmp_path / "kws.pt", streaming=False, cell=cell, layers=1, features=features)
    export(ckpt, tmp_path / "kws.onnx")
    from seqapp.speech.settings import model_from_checkpoint

    model, labels = model_from_checkpoint(checkpoint.load(ckpt))
    waves = torch.stack([torch.as_tensor(tone(f)) for f in (300.0, 1200.0, 3000.0, 500.0, 800.0)])  # batch 5
    with torch.no_grad():
        expected = model(waves).numpy()
    sess = session(tmp_path / "kws.onnx")
    assert metadata(sess)["labels"] == labels
    np.testing.assert_allclose(sess.run(None, {"wave": waves.numpy()})[0], expected, atol=1e-4)


@pytest.mark.parametrize("cell, features, tuned", [("gru", "logmel", 0), ("lstm", "logmel", 0), ("gru", "embedding", 0),
                                                   ("gru", "embedding", 1)])
def test_stream_chunks_give_spotter_stream_posteriors(tmp_path, cell, features, tuned):
    ckpt = kws_checkpoint(tmp_path / "kws.pt", streaming=True, cell=cell, features=features, tune_embedding=tuned)
    export(ckpt, tmp_path / "stream.onnx")
    from seqapp.speech.settings import model_from_checkpoint

    model, _ = model_from_checkpoint(checkpoint.load(ckpt))
    wave = np.concatenate([tone(440.0, 1.3), 0.05 * np.random.default_rng(0).standard_normal(16000)]).astype(np.float32)
    expected = SpotterStream(model).push(wave).numpy()
    sess, meta = session(tmp_path / "stream.onnx"), metadata(session(tmp_path / "stream.onnx"))
    read, advance, lead, warmup = chunk_sizes(model, default_chunk_steps(model))
    assert [meta[k] for k in ("chunk_samples", "advance_samples", "lead_samples", "warmup_calls")] == [read, advance, lead, warmup]
    assert (warmup > 0) == (features == "embedding")  # the embedding's chunks read only their new frames
    state = {name: np.zeros(shape, np.float32) for name, shape in zip(meta["inputs"][1:], meta["state_shapes"])}
    padded, got = np.concatenate([np.zeros(lead, np.float32), wave]), []
    for call, pos in enumerate(range(0, len(padded) - read + 1, advance)):  # many chunks, state carried
        probs, *new = sess.run(None, {"samples": padded[None, pos: pos + read], **state})
        state = dict(zip(meta["inputs"][1:], new))
        if call == warmup - 1:  # the warm-up filled the embedding's state: the encoder starts afresh
            state = {name: s if name == "ear" else np.zeros_like(s) for name, s in state.items()}
        if call >= warmup:
            got.append(probs[0])
    got = np.concatenate(got)
    assert len(got) >= len(expected) - meta["steps_per_chunk"]
    np.testing.assert_allclose(got, expected[: len(got)], atol=1e-4)


@pytest.mark.parametrize("cell, features", [("lstm", "logmel"), ("gru", "logmel"), ("gru", "embedding")])
def test_stream_int8_posteriors_within_tolerance(tmp_path, cell, features):
    # GRU: exported as its steps' products, to be int8 at all; the embedding's front end stays float
    ckpt = kws_checkpoint(tmp_path / "kws.pt", streaming=True, cell=cell, features=features)
    export(ckpt, tmp_path / "int8.onnx", "--int8")
    import onnx

    graph = onnx.load(str(tmp_path / "int8.onnx")).graph
    int8_shapes = {tuple(i.dims) for i in graph.initializer if i.data_type == onnx.TensorProto.INT8}
    if cell == "lstm":
        assert "DynamicQuantizeLSTM" in {n.op_type for n in graph.node}
    else:  # the recurrent weights themselves are int8
        assert (24, 72) in int8_shapes
    from seqapp.speech.settings import model_from_checkpoint

    model, _ = model_from_checkpoint(checkpoint.load(ckpt))
    feeds = chunk_feeds(model, tmp_path / "int8.onnx")
    with torch.no_grad():
        expected = ChunkGraph(model)(*map(torch.as_tensor, feeds.values()))[0].numpy()
    got = session(tmp_path / "int8.onnx").run(None, feeds)[0]
    assert np.abs(got - expected).max() < 0.02  # posteriors; the documented tolerance


@pytest.fixture(scope="module")
def embedding_stream(tmp_path_factory):
    """A streaming spotter on the embedding and its float32 export, made once for the storage tests."""
    folder = tmp_path_factory.mktemp("embedding_stream")
    ckpt = kws_checkpoint(folder / "kws.pt", streaming=True, features="embedding")
    export(ckpt, folder / "float32.onnx")
    return ckpt, folder / "float32.onnx"


@pytest.mark.parametrize("weights", ["float16", "int8"])
def test_stored_weights_shrink_the_stream_graph_and_keep_its_posteriors(tmp_path, weights, embedding_stream):
    import onnx

    ckpt, float32 = embedding_stream
    export(ckpt, tmp_path / f"{weights}.onnx", "--weights", weights)
    large = [w for w in onnx.load(str(tmp_path / f"{weights}.onnx")).graph.initializer if np.prod(w.dims) >= 1024]
    kinds = {w.data_type for w in large}
    if weights == "float16":
        assert kinds == {onnx.TensorProto.FLOAT16}
    else:  # the GRU's int8, the embedding's convolutions float16 (int8 moved a trained one's posteriors by 0.19)
        assert kinds == {onnx.TensorProto.INT8, onnx.TensorProto.FLOAT16}
        assert all(w.data_type == onnx.TensorProto.FLOAT16 for w in large if "frontend" in w.name)
    assert (tmp_path / f"{weights}.onnx").stat().st_size < 0.6 * float32.stat().st_size
    from seqapp.speech.settings import model_from_checkpoint

    model, _ = model_from_checkpoint(checkpoint.load(ckpt))
    feeds = chunk_feeds(model, tmp_path / f"{weights}.onnx")
    with torch.no_grad():
        expected = ChunkGraph(model)(*map(torch.as_tensor, feeds.values()))[0].numpy()
    got = session(tmp_path / f"{weights}.onnx").run(None, feeds)[0]
    assert np.abs(got - expected).max() < TOLERANCE[weights]  # posteriors; the tolerance the export checks


@pytest.mark.parametrize("features", ["logmel", "embedding"])  # the embedding: its state carried, a warm-up
def test_spot_example_detects_what_seqapp_detects(tmp_path, features):
    # Sharpened posteriors and a threshold (0.55) that the keyword averages never come within 6e-4 of here,
    # while PyTorch's and onnxruntime's averages differ by ~1e-5: rounding cannot move a detection.
    ckpt = kws_checkpoint(tmp_path / "kws.pt", streaming=True, sharpen=60.0, features=features)
    export(ckpt, tmp_path / "stream.onnx")
    rng = np.random.default_rng(1)
    wave = np.concatenate([np.concatenate([tone(f, 0.7), 0.02 * rng.standard_normal(9000)])
                           for f in rng.uniform(200, 4000, 12)]).astype(np.float32)
    sf.write(tmp_path / "rec.wav", wave, 16000)
    ours = run_cli("-m", "seqapp", "spot", "--checkpoint", ckpt, "--stream", tmp_path / "rec.wav", "--threshold", "0.55")
    theirs = run_cli(ROOT / "examples" / "spot_stream_onnx.py", tmp_path / "stream.onnx", tmp_path / "rec.wav",
                     "--threshold", "0.55")
    assert ours.returncode == theirs.returncode == 0, theirs.stderr
    assert len(ours.stdout.splitlines()) >= 3
    assert theirs.stdout == ours.stdout


def test_bad_exports_are_one_line(tmp_path):
    lm = lm_checkpoint(tmp_path / "lm.pt", "gru")
    synth = tmp_path / "synth.pt"
    checkpoint.save({"task": "synth", "task_state": {}, "model": {}}, synth)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    cases = [(("--checkpoint", synth, "--out", tmp_path / "a.onnx"), "only kws and lm models export"),
             (("--checkpoint", tmp_path / "junk.pt", "--out", tmp_path / "a.onnx"), "not a readable checkpoint"),
             (("--checkpoint", lm, "--out", tmp_path), "is a folder"),
             (("--checkpoint", lm, "--out", tmp_path / "junk.pt" / "a.onnx"), "junk.pt")]  # a file, not a folder
    for flags, message in cases:
        result = run_main("export", *flags)
        assert result.returncode != 0 and message in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr
    export(lm, tmp_path / "lm.onnx")
    for script, args in (("spot_stream_onnx.py", (tmp_path / "lm.onnx", tmp_path / "none.wav")),
                         ("generate_onnx.py", (tmp_path / "junk.pt",))):
        result = run_cli(ROOT / "examples" / script, *args)
        assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_an_export_that_disagrees_with_pytorch_is_refused(tmp_path):
    from seqapp.errors import UserError
    from seqapp.onnx_export import checked_difference

    export(lm_checkpoint(tmp_path / "lm.pt", "gru"), tmp_path / "lm.onnx")
    feeds = {"tokens": np.array([1, 2]), "h": np.zeros((2, 2, 32), np.float32)}
    right = session(tmp_path / "lm.onnx").run(None, feeds)
    assert checked_difference(tmp_path / "lm.onnx", feeds, right, int8=False) == 0
    wrong = [right[0] + 0.01, right[1]]
    assert checked_difference(tmp_path / "lm.onnx", feeds, wrong, int8=True) == pytest.approx(0.01, rel=1e-3)
    with pytest.raises(UserError, match="disagrees with PyTorch"):
        checked_difference(tmp_path / "lm.onnx", feeds, wrong, int8=False)


def test_examples_need_no_seqapp_or_torch():
    for script in ("generate_onnx.py", "spot_stream_onnx.py"):
        imports = {line.split()[1].split(".")[0] for line in (ROOT / "examples" / script).read_text().splitlines()
                   if line.startswith(("import ", "from "))}
        assert imports <= {"argparse", "codecs", "json", "sys", "collections", "pathlib", "numpy", "onnxruntime",
                           "soundfile"}, imports
