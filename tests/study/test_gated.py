"""Simple vs gated: the long-range problems, parameter budgets, forget bias, gradient flow, gate saturation,
inspect, and the study on a tiny grid."""
import json
import math

import numpy as np
import pytest
import torch

from conftest import TEXT, assert_one_line_error, run_main
from seqapp.encoder import EncoderConfig, RecurrentEncoder, count_parameters, hidden_for_params
from seqapp.long_range.gradients import gradient_by_distance
from seqapp.long_range.task import COPY_SYMBOLS, SynthConfig, SynthTask, adding_batch, baseline, copy_batch
from seqapp.text.inspect import choose_cells, saturation, unroll


def test_adding_problem_targets_and_baseline_from_data():
    x, y = adding_batch(np.random.default_rng(0), 20000, 60)
    assert x.shape == (20000, 60, 2) and y.shape == (20000, 1)
    markers = x[..., 1]
    assert torch.all(markers.sum(1) == 2)
    assert torch.all(markers[:, :30].sum(1) == 1) and torch.all(markers[:, 30:].sum(1) == 1)  # one in each half
    assert torch.allclose((x[..., 0] * markers).sum(1, keepdim=True), y)
    assert ((y - 1) ** 2).mean().item() == pytest.approx(baseline(SynthConfig(problem="adding")), abs=0.005)


def test_copy_task_layout_and_memoryless_baseline_from_data():
    length = 30
    x, y = copy_batch(np.random.default_rng(0), 20000, length)
    total = length + 2 * COPY_SYMBOLS
    assert x.shape == (20000, total, 10) and y.shape == (20000, total)
    ids = x.argmax(-1)
    assert torch.equal(y[:, -COPY_SYMBOLS:], ids[:, :COPY_SYMBOLS])  # reproduce the first 10 symbols
    assert torch.all(ids[:, COPY_SYMBOLS + length - 1] == 9) and torch.all(y[:, :-COPY_SYMBOLS] == 0)
    # a model that remembers nothing can do no better than the entropy of each step's target
    entropy = 0.0
    for t in range(total):
        p = torch.bincount(y[:, t], minlength=10).double() / len(y)
        entropy -= float((p[p > 0] * p[p > 0].log()).sum())
    assert entropy / total == pytest.approx(baseline(SynthConfig(problem="copy", length=length)), rel=0.01)


class Interrupted(Exception):
    pass


class InterruptedTask(SynthTask):
    """Stops the run when it asks for the batch of step 10 (after the checkpoint of step 10 is written)."""

    def train_batch(self, step, rank, world):
        if step == 10:
            raise Interrupted
        return super().train_batch(step, rank, world)


def test_synth_training_resumes_bitwise(tmp_path):
    from seqapp import checkpoint
    from seqapp.trainer import TrainConfig, Trainer

    cfg = lambda: SynthConfig(problem="adding", length=20, cell="gru", hidden=8, batch_size=8, val_size=32)  # noqa: E731
    train = lambda out: TrainConfig(out=str(out), steps=20, eval_every=5, device="cpu", schedule="wsd")  # noqa: E731
    straight = Trainer(SynthTask(cfg()), train(tmp_path / "straight"))
    straight.fit()
    with pytest.raises(Interrupted):
        Trainer(InterruptedTask(cfg()), train(tmp_path / "cut")).fit()
    resumed = Trainer(SynthTask(cfg()), train(tmp_path / "cut"), checkpoint.load(tmp_path / "cut" / "last.pt"))
    assert resumed.step == 10
    resumed.fit()
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    ev = run_main("evaluate", "synth", "--checkpoint", tmp_path / "straight" / "best.pt", "--json")
    assert ev.returncode == 0 and json.loads(ev.stdout)["baseline"] == pytest.approx(1 / 6)


def test_synth_through_the_cli(tmp_path):
    done = run_main("train", "synth", "--problem", "copy", "--length", "5", "--cell", "lstm", "--params", "3000",
                    "--forget-bias", "1", "--steps", "4", "--eval-every", "2", "--device", "cpu", "--out", tmp_path / "c")
    assert done.returncode == 0, done.stderr
    grads = run_main("gradients", "--checkpoint", tmp_path / "c" / "best.pt")
    assert grads.returncode == 0 and (tmp_path / "c" / "gradients.png").exists()
    curves = json.loads((tmp_path / "c" / "gradients.json").read_text())
    assert set(curves) == {"initialization", "trained"} and len(curves["trained"]["h"]) == 5 + 20
    fresh = run_main("gradients", "--problem", "adding", "--length", "30", "--cell", "rnn_tanh", "--hidden", "16",
                     "--out", tmp_path / "g")
    assert fresh.returncode == 0 and "initialization" in fresh.stdout
    assert_one_line_error(run_main("train", "synth", "--problem", "adding", "--length", "1", "--out", tmp_path / "x"),
                          "--length")


def test_params_picks_the_hidden_size_for_the_budget():
    for cell, expected in (("rnn_tanh", 128), ("lstm", 63), ("gru", 73)):  # per layer g*h*(d + h + 2)
        count = lambda h, c=cell: count_parameters(RecurrentEncoder(EncoderConfig(2, c, 1, h)))  # noqa: E731
        h = hidden_for_params(17_000, count)
        assert abs(h - expected) <= 1
        assert abs(count(h) - 17_000) <= min(abs(count(h - 1) - 17_000), abs(count(h + 1) - 17_000))
    task = SynthTask(SynthConfig(problem="adding", cell="gru", params=17_000))
    assert abs(count_parameters(task.build_model()) - 17_000) < 250


def test_forget_bias_sets_the_lstm_forget_gate():
    enc = RecurrentEncoder(EncoderConfig(3, "lstm", 2, 5, forget_bias=1.0))
    for layer in range(2):
        b_ih, b_hh = getattr(enc.rnn, f"bias_ih_l{layer}"), getattr(enc.rnn, f"bias_hh_l{layer}")
        assert torch.all(b_ih[5:10] + b_hh[5:10] == 1.0)
        assert not torch.all(b_ih[:5] == 1.0)  # the other gates keep PyTorch's initialization


def test_gradient_of_a_linear_rnn_decays_as_a_power():
    """h_t = relu(0 * x + a * h_{t-1} + 1) stays positive, so relu is the identity: dh_T/dh_{T-k} = a^k."""
    a = 0.75  # exact in float32, where the weights are set before the float64 unroll
    enc = RecurrentEncoder(EncoderConfig(2, "rnn_relu", 1, 4))
    with torch.no_grad():
        enc.rnn.weight_ih_l0.zero_()
        enc.rnn.weight_hh_l0.copy_(a * torch.eye(4))
        enc.rnn.bias_ih_l0.fill_(1.0)
        enc.rnn.bias_hh_l0.zero_()
    model = torch.nn.Module()
    model.encoder, model.read_out = enc, (lambda out: out[:, -1].sum())
    ratios = gradient_by_distance(model, torch.randn(3, 40, 2), lambda pred: pred)["h"]
    assert np.allclose(ratios, a ** np.arange(40), rtol=1e-10)


def test_gate_saturation_on_hand_made_activations():
    gate = np.array([[0.05, 0.5, 0.95], [0.05, 0.95, 0.95], [0.5, 0.05, 0.95], [0.05, 0.5, 0.91]])
    left, right = saturation(gate)
    assert np.allclose(left, [0.75, 0.25, 0.0]) and np.allclose(right, [0.0, 0.25, 1.0])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_unrolled_gates_reproduce_the_fused_module(cell):
    torch.manual_seed(0)
    enc = RecurrentEncoder(EncoderConfig(6, cell, 2, 7)).eval()
    x = torch.randn(30, 6)
    layers = unroll(enc, x)
    with torch.no_grad():
        out, _ = enc(x[None])
    assert np.allclose(layers[-1]["h"], out[0].numpy(), atol=1e-5)
    gates = ("input", "forget", "output") if cell == "lstm" else ("reset", "update")
    assert all(0 <= layers[0][g].min() and layers[0][g].max() <= 1 for g in gates)


def test_choose_cells_finds_the_line_position_cell():
    text = "abcdefgh\n" * 20
    pos = np.array([i % 9 for i in range(len(text))], dtype=float)
    cells = np.random.default_rng(0).normal(0, 0.1, (len(text), 5))
    cells[:, 3] = pos / 4 - 1  # this cell counts characters since the newline
    chosen = choose_cells(cells, text, count=2)
    assert chosen[0][0] == 3 and "position in the line" in chosen[0][1] and len(chosen) == 3


def test_inspect_an_lm_and_refuse_a_gateless_one(tmp_path, text_file):
    tiny = ["--hidden", "16", "--layers", "1", "--batch-size", "4", "--seq-len", "16", "--steps", "2",
            "--eval-every", "2", "--device", "cpu", "--data", text_file]
    assert run_main("train", "lm", *tiny, "--cell", "gru", "--out", tmp_path / "gru").returncode == 0
    done = run_main("inspect", "--checkpoint", tmp_path / "gru" / "best.pt", "--out", tmp_path / "insp", "--chars", "300")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "insp" / "saturation.png").exists()
    page = (tmp_path / "insp" / "cells.html").read_text()
    assert page.count("<h2>") == 4 and page.count("<span") == 4 * 300  # the line cell and the 3 most variable
    summary = json.loads((tmp_path / "insp" / "saturation.json").read_text())
    assert set(summary) == {"layer1_reset", "layer1_update"}
    assert run_main("train", "lm", *tiny, "--cell", "rnn_tanh", "--out", tmp_path / "rnn").returncode == 0
    assert_one_line_error(run_main("inspect", "--checkpoint", tmp_path / "rnn" / "best.pt", "--out", tmp_path / "x"),
                          "no gates")


def test_study_on_a_tiny_grid_writes_the_report_and_resumes(tmp_path):
    from seqapp.study.report import write_report
    from seqapp.study.run import Grid, plan, run_all

    data = tmp_path / "text.txt"
    data.write_text(TEXT)
    grid = Grid(cells=("rnn_tanh", "gru"), adding_lengths=(12,), seeds=(1,), synth_params=400, synth_steps=6,
                copy_length=4, copy_steps=6, gradient_length=12, lm_steps=5, lm_params=2000, lm_cells=("gru",))
    runs = plan(grid, str(data), None)
    results = run_all(runs, tmp_path / "study")
    assert not [r for r in results.values() if "error" in r]
    report = write_report(results, grid, tmp_path / "study", "test machine", 2).read_text()
    for heading in ("The adding problem", "copy-memory", "Gradient flow", "Character LM"):
        assert heading in report
    assert (tmp_path / "study" / "adding.png").exists() and (tmp_path / "study" / "gradients.png").exists()
    assert math.isfinite(results["adding_T12_gru_s1"]["final"]["loss"])
    again = run_all(runs, tmp_path / "study")  # everything done: nothing runs again
    assert again == results
