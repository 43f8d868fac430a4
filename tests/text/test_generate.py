"""Fast generation: the numpy step against PyTorch's, one text per seed on every backend, several samples."""
import numpy as np
import pytest
import torch

from seqapp.errors import UserError
from seqapp.text.generate import generate, generate_many
from seqapp.text.model import LanguageModel, LMModelConfig
from seqapp.text.numpy_step import NumpyStep
from seqapp.text.tokenizer import CharTokenizer

CELLS = ["lstm", "gru", "rnn_tanh", "rnn_relu"]


def small_model(cell: str, layers: int = 2, hidden: int = 24, vocab: int = 30, scale: float = 1.0) -> LanguageModel:
    torch.manual_seed(0)
    model = LanguageModel(LMModelConfig(vocab_size=vocab, cell=cell, layers=layers, hidden=hidden)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale)
    return model


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers,streams", [(1, 5), (3, 5), (2, 1)])
def test_numpy_step_matches_pytorch_over_many_steps(cell, layers, streams):
    model = small_model(cell, layers, scale=3.0)  # larger weights than at initialisation: saturated gates too
    fast = NumpyStep(model)
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 30, (40, streams))  # 40 steps
    state, np_state = None, fast.zero_state(streams)
    with torch.no_grad():
        for row in tokens:
            logits, state = model.step(torch.as_tensor(row), state)
            np_logits, np_state = fast.step(row, np_state)
            close(np_logits, logits.numpy())
    torch_state = state if isinstance(state, tuple) else (state,)
    for a, b in zip(np_state, torch_state):
        close(a, b.numpy())


def close(actual: np.ndarray, expected: np.ndarray) -> None:
    """float32 agreement, relative to the largest value (a ReLU RNN's values grow into the hundreds)."""
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5 * max(1.0, np.abs(expected).max()))


@pytest.mark.parametrize("cell", CELLS)
def test_numpy_and_torch_backends_make_the_same_text(cell):
    model = small_model(cell, vocab=27)
    tokenizer = CharTokenizer("abcdefghijklmnopqrstuvwxyz")
    kwargs = dict(prompt="hello", length=200, temperature=0.9, top_k=10, top_p=0.95, seed=5)
    fast, slow = generate(model, tokenizer, backend="numpy", **kwargs), generate(model, tokenizer, backend="torch", **kwargs)
    assert fast == slow and len(fast) > 100  # the unknown id decodes to nothing
    assert generate(model, tokenizer, backend="numpy", **{**kwargs, "seed": 6}) != fast


def test_several_samples_in_one_batch_differ_and_follow_the_seed():
    model = small_model("lstm", vocab=27)
    tokenizer = CharTokenizer("abcdefghijklmnopqrstuvwxyz")
    samples = generate_many(model, tokenizer, "the", 80, 1.0, seed=3, num_samples=8)
    assert len(samples) == 8 and len(set(samples)) == 8 and all(len(s) > 60 for s in samples)
    assert generate_many(model, tokenizer, "the", 80, 1.0, seed=3, num_samples=8, backend="torch") == samples
    greedy = generate_many(model, tokenizer, "the", 30, 0.0, num_samples=3)
    assert greedy == [generate(model, tokenizer, "the", 30, 0.0)] * 3  # no randomness: every stream alike


def test_bad_sampling_settings_are_one_line():
    model = small_model("gru", vocab=27)
    tokenizer = CharTokenizer("abcdefghijklmnopqrstuvwxyz")
    for kwargs, message in [({"num_samples": 0}, "--num-samples"), ({"backend": "tpu"}, "backend"),
                            ({"top_p": 1.5}, "--top-p"), ({"length": 0}, "--length")]:
        with pytest.raises(UserError, match=message):
            generate_many(model, tokenizer, "a", **{"length": 5, **kwargs})
