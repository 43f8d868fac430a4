"""The language model: causal, stateful, its checkpoints, its generation and its validation score."""
import numpy as np
import pytest
import torch

from seqapp import checkpoint
from seqapp.errors import UserError
from seqapp.task import EvalContext
from seqapp.text.generate import generate
from seqapp.text.model import LanguageModel, LMModelConfig
from seqapp.text.task import LMConfig, LMTask, model_from_checkpoint, score_stream
from seqapp.trainer import TrainConfig, Trainer


def test_bidirectional_lm_is_refused():
    with pytest.raises(UserError, match="bidirectional"):
        LanguageModel(LMModelConfig(vocab_size=10, bidirectional=True))


def test_tied_weights_share_one_matrix():
    model = LanguageModel(LMModelConfig(vocab_size=10, hidden=8, tie_weights=True))
    assert model.head.weight is model.embed.weight
    with pytest.raises(UserError, match="tie"):
        LanguageModel(LMModelConfig(vocab_size=10, hidden=8, embed=4, tie_weights=True))


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
def test_model_is_causal(cell):
    torch.manual_seed(0)
    model = LanguageModel(LMModelConfig(vocab_size=12, cell=cell, hidden=16)).eval()
    ids = torch.randint(0, 12, (1, 20))
    changed = ids.clone()
    changed[0, 15:] = (changed[0, 15:] + 1) % 12
    a, _ = model(ids)
    b, _ = model(changed)
    torch.testing.assert_close(a[:, :15], b[:, :15])
    assert not torch.allclose(a[:, 15:], b[:, 15:])


def test_stream_score_matches_one_pass_and_is_independent_of_streams():
    torch.manual_seed(0)
    model = LanguageModel(LMModelConfig(vocab_size=7, hidden=16)).eval()
    ids = np.random.default_rng(0).integers(0, 7, 3000).astype(np.uint8)
    ctx = EvalContext(torch.device("cpu"), "fp32")
    with torch.no_grad():
        logits, _ = model(torch.from_numpy(ids.astype(np.int64))[None, :-1])
        direct = torch.nn.functional.cross_entropy(logits[0], torch.from_numpy(ids[1:].astype(np.int64))).item()
        one = score_stream(model, ids, len(ids) - 1, ctx, streams=1, chunk=100)
        many = score_stream(model, ids, len(ids) - 1, ctx, streams=8, chunk=100, burn_in=200)
    assert one["loss"] == pytest.approx(direct, rel=1e-5)
    assert many["loss"] == pytest.approx(one["loss"], rel=1e-3)  # burn-in warms each stream's state
    assert one["bpc"] == pytest.approx(one["loss"] / np.log(2))


@pytest.fixture
def trained(tmp_path, text_file):
    task = LMTask(LMConfig(data=str(text_file), hidden=32, batch_size=4, seq_len=16))
    cfg = TrainConfig(out=str(tmp_path / "run"), steps=12, eval_every=6, warmup=2, device="cpu")
    summary = Trainer(task, cfg).fit()
    return task, tmp_path / "run", summary


def test_checkpoint_round_trip_gives_identical_logits(trained):
    task, out, _ = trained
    ckpt = checkpoint.load(out / "last.pt", task="lm")
    model, tokenizer = model_from_checkpoint(ckpt)
    again, _ = model_from_checkpoint(checkpoint.load(out / "last.pt", task="lm"))
    ids = torch.from_numpy(task.val_ids[:50].astype(np.int64))[None]
    with torch.no_grad():
        torch.testing.assert_close(model(ids)[0], again(ids)[0], rtol=0, atol=0)
    assert ckpt["format_version"] == 1 and ckpt["step"] == 12
    assert {"optimizer", "scheduler", "scaler", "task_state"} <= set(ckpt)
    assert tokenizer.decode(tokenizer.encode("Citizen")) == "Citizen"


def test_training_improves_validation_and_writes_curves(trained):
    task, out, summary = trained
    rows = [line for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert any('"split": "val"' in r for r in rows) and any('"split": "train"' in r for r in rows)
    assert (out / "curves.png").stat().st_size > 0 and (out / "config.json").exists()
    assert summary["best"] < np.log(task.tokenizer.vocab_size)  # better than uniform guessing


def test_generation_same_seed_same_text_and_streams_what_it_returns(trained):
    import io

    _, out, _ = trained
    model, tokenizer = model_from_checkpoint(checkpoint.load(out / "best.pt", task="lm"))
    stream = io.StringIO()
    a = generate(model, tokenizer, "First", 60, 0.8, top_k=5, top_p=0.9, seed=3, stream=stream)
    b = generate(model, tokenizer, "First", 60, 0.8, top_k=5, top_p=0.9, seed=3)
    c = generate(model, tokenizer, "First", 60, 0.8, top_k=5, top_p=0.9, seed=4)
    assert a == b == stream.getvalue() and len(a) == 60
    assert a != c
    assert generate(model, tokenizer, "First 😀", 10, 0.0) == generate(model, tokenizer, "First 😀", 10, 0.0)


def test_generation_is_stateful_not_rerunning_the_prefix(trained, monkeypatch):
    _, out, _ = trained
    model, tokenizer = model_from_checkpoint(checkpoint.load(out / "best.pt", task="lm"))
    calls = []
    forward, step = model.forward, model.step
    monkeypatch.setattr(model, "forward", lambda ids, state=None: calls.append(ids.shape) or forward(ids, state))
    monkeypatch.setattr(model, "step", lambda ids, state=None: calls.append(ids.shape) or step(ids, state))
    generate(model, tokenizer, "First Citizen", 20, 0.8, backend="torch")
    assert calls[0] == (1, len("First Citizen"))  # the prompt, read once
    assert calls[1:] == [(1,)] * 19               # then one token per call, never the prefix again


def test_sampling_filters():
    from seqapp.text.generate import sample

    rng = np.random.default_rng(0)
    logits = np.array([[0.0, 5.0, 4.9, -2.0]])
    draws = lambda *filters: {int(sample(logits, 1.0, *filters, rng)[0]) for _ in range(300)}  # noqa: E731
    assert sample(logits, 0.0, None, None, rng)[0] == 1
    assert draws(2, None) == {1, 2}
    assert draws(None, 0.3) == {1}
    assert draws(None, 0.6) == {1, 2}
    many = sample(np.tile([[0.0, np.log(3.0)]], (8000, 1)), 1.0, None, None, rng)  # 8,000 streams at once
    assert abs(many.mean() - 0.75) < 0.02
