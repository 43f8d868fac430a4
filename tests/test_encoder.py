import itertools

import pytest
import torch

from seqapp.encoder import CELLS, EncoderConfig, RecurrentEncoder
from seqapp.errors import UserError


@pytest.mark.parametrize("cell,layers,bidirectional", list(itertools.product(CELLS, [1, 2], [False, True])))
def test_every_cell_shape_and_state(cell, layers, bidirectional):
    torch.manual_seed(0)
    enc = RecurrentEncoder(EncoderConfig(5, cell, layers, 8, 0.1, bidirectional)).eval()
    x = torch.randn(3, 7, 5)
    out, state = enc(x)
    directions = 2 if bidirectional else 1
    assert out.shape == (3, 7, 8 * directions) == (3, 7, enc.output_size)
    h = state[0] if cell == "lstm" else state
    assert h.shape == (layers * directions, 3, 8)
    # the final state fed back in continues the sequence
    out2, _ = enc(x, state=state)
    assert not torch.allclose(out, out2)


@pytest.mark.parametrize("cell", CELLS)
def test_packed_lengths_ignore_padding(cell):
    torch.manual_seed(0)
    enc = RecurrentEncoder(EncoderConfig(4, cell, 2, 6, 0.0, True)).eval()
    x = torch.randn(2, 9, 4)
    lengths = torch.tensor([9, 5])
    out, _ = enc(x, lengths)
    alone, _ = enc(x[1:, :5])
    torch.testing.assert_close(out[1, :5], alone[0], atol=1e-5, rtol=1e-5)
    assert out[1, 5:].abs().sum() == 0
    x_noisy = x.clone()
    x_noisy[1, 5:] = 100.0  # whatever is in the padding must not matter
    out_noisy, _ = enc(x_noisy, lengths)
    torch.testing.assert_close(out[1], out_noisy[1])


def forward_one(enc, x_t, state):
    out, state = enc(x_t[:, None], state=state)
    return out[:, 0], state


@pytest.mark.parametrize("one_step", [forward_one, lambda enc, x_t, state: enc.step(x_t, state)],
                         ids=["forward", "step"])
@pytest.mark.parametrize("cell", CELLS)
def test_stepwise_equals_full_sequence(cell, one_step):
    """One step at a time with the carried state (forward() on length 1, or the fused step()) == one pass."""
    torch.manual_seed(0)
    enc = RecurrentEncoder(EncoderConfig(4, cell, 3, 6)).eval()
    x = torch.randn(2, 12, 4)
    full, full_state = enc(x)
    state, outs = None, []
    for t in range(12):
        out, state = one_step(enc, x[:, t], state)
        outs.append(out)
    torch.testing.assert_close(torch.stack(outs, 1), full, atol=1e-5, rtol=1e-5)
    for a, b in zip(state if cell == "lstm" else [state], full_state if cell == "lstm" else [full_state]):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("bad", [dict(cell="transformer"), dict(layers=0), dict(hidden=-3), dict(dropout=1.5)])
def test_bad_configs_are_user_errors(bad):
    with pytest.raises(UserError):
        RecurrentEncoder(EncoderConfig(**{"input_size": 4, **bad}))
