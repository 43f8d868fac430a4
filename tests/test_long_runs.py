"""Training that survives faults: exact resume after SIGKILL, saves that cannot be lost, non-finite losses,
early stopping, TensorBoard and the resolved config."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import ROOT, assert_one_line_error, run_cli, run_main
from seqapp import checkpoint
from seqapp.errors import UserError
from seqapp.text.task import LMConfig, LMTask
from seqapp.trainer import TrainConfig, Trainer

TINY = ["--hidden", "32", "--layers", "2", "--dropout", "0.1", "--batch-size", "4", "--seq-len", "16",
        "--device", "cpu", "--seed", "5"]


def train_args(text_file, out, steps=40, eval_every=5):
    return ["train.py", "lm", "--data", str(text_file), "--out", str(out), "--steps", str(steps),
            "--eval-every", str(eval_every), *TINY]


def weights(path):
    return torch.load(path, weights_only=True)["model"]


def val_rows(out):
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in rows if r["split"] == "val"]


def test_sigkill_then_resume_is_bitwise_identical(tmp_path, text_file):
    # with a moving average of the weights (--ema): validated, kept in best.pt, and carried through the resume
    straight = tmp_path / "straight"
    assert run_cli(*train_args(text_file, straight), "--ema", "0.9").returncode == 0

    killed = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, *train_args(text_file, killed), "--ema", "0.9"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:  # wait for a checkpoint part-way, then kill without warning
        if (killed / "last.pt").exists():
            try:
                if 10 <= checkpoint.load(killed / "last.pt")["step"] < 40:
                    break
            except UserError:
                pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    interrupted_at = checkpoint.load(killed / "last.pt")["step"]
    assert interrupted_at < 40

    resumed = run_cli(*train_args(text_file, killed), "--resume")  # its saved settings: --ema too
    assert resumed.returncode == 0, resumed.stderr
    a, b = weights(straight / "last.pt"), weights(killed / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert val_rows(straight) == val_rows(killed)
    assert torch.equal(weights(straight / "best.pt")["head.weight"], weights(killed / "best.pt")["head.weight"])
    averaged = [torch.load(out / "last.pt", weights_only=True)["averaged"]["module.head.weight"]
                for out in (straight, killed)]
    assert torch.equal(*averaged)
    assert not torch.equal(averaged[0], a["head.weight"])  # the average, not the last weights


def test_the_moving_average_forgets_the_first_weights_then_averages_with_its_decay():
    from seqapp.trainer import moving_average

    model = torch.nn.Linear(1, 1, bias=False)
    averaged = moving_average(model, decay=0.5)
    expected = None
    for n, value in enumerate([4.0, 0.0, 2.0, 8.0]):
        model.weight.data.fill_(value)
        averaged.update_parameters(model)
        rate = min(0.5, (1 + n) / (10 + n))  # n updates before this one; the first is copied
        expected = value if expected is None else expected * rate + value * (1 - rate)
    assert averaged.module.weight.item() == pytest.approx(expected)
    assert expected != pytest.approx(8.0) and expected != pytest.approx(3.5)  # neither the last nor the plain mean


def test_interrupted_save_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    checkpoint.save({"task": "lm", "step": 1, "w": torch.ones(3)}, path)

    def crash(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt  # the user presses Ctrl-C mid-write

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save({"task": "lm", "step": 2, "w": torch.zeros(3)}, path)
    assert checkpoint.load(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind


def test_a_checkpoint_gets_the_permissions_of_any_new_file(tmp_path):
    old = os.umask(0o022)
    try:
        checkpoint.save({"task": "lm", "step": 1}, tmp_path / "best.pt")
    finally:
        os.umask(old)
    assert (tmp_path / "best.pt").stat().st_mode & 0o777 == 0o644  # readable by the server that loads it


def test_sigkill_during_saves_never_leaves_a_broken_file(tmp_path):
    path = tmp_path / "last.pt"
    script = (f"import torch, sys; sys.path.insert(0, {str(ROOT)!r}); from seqapp import checkpoint\n"
              f"i = 0\nwhile True:\n    i += 1\n"
              f"    checkpoint.save({{'task': 'lm', 'step': i, 'w': torch.randn(2_000_000)}}, {str(path)!r})\n")
    for delay in (0.8, 1.3, 2.1):
        proc = subprocess.Popen([sys.executable, "-c", script])
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if path.exists():
            assert checkpoint.load(path)["w"].shape == (2_000_000,)


class NaNAfter:
    """Wraps a task so that its loss turns NaN from a given step on."""

    def __init__(self, task, start, stop=None):
        self.task, self.start, self.stop, self.step = task, start, stop, 0
        for name in ("name", "select_metric", "select_mode", "unit", "build_model", "to_device", "evaluate", "state"):
            setattr(self, name, getattr(task, name))

    def train_batch(self, step, rank, world):
        self.step = step
        return self.task.train_batch(step, rank, world)

    def loss(self, model, batch):
        loss, count = self.task.loss(model, batch)
        if self.start <= self.step < (self.stop or 10**9):
            loss = loss * float("nan")
        return loss, count


@pytest.fixture
def lm_task(text_file):
    return LMTask(LMConfig(data=str(text_file), hidden=16, layers=1, batch_size=4, seq_len=16))


def test_nonfinite_steps_are_skipped_and_counted(tmp_path, lm_task):
    cfg = TrainConfig(out=str(tmp_path / "run"), steps=20, eval_every=10, device="cpu", log_every=1)
    trainer = Trainer(NaNAfter(lm_task, 5, 8), cfg)
    summary = trainer.fit()
    assert summary["skipped_nonfinite"] == 3 and summary["step"] == 20
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert max(r.get("skipped_nonfinite", 0) for r in rows) == 3


def test_nonfinite_weights_never_change(tmp_path, lm_task):
    cfg = TrainConfig(out=str(tmp_path / "run"), steps=6, eval_every=6, device="cpu", max_bad_steps=100)
    trainer = Trainer(NaNAfter(lm_task, 0), cfg)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.fit()
    assert all(torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())


def test_too_many_nonfinite_steps_stop_with_the_last_good_checkpoint(tmp_path, lm_task):
    cfg = TrainConfig(out=str(tmp_path / "run"), steps=40, eval_every=5, device="cpu", max_bad_steps=4)
    trainer = Trainer(NaNAfter(lm_task, 12), cfg)
    with pytest.raises(UserError, match="4 non-finite losses in a row"):
        trainer.fit()
    good = checkpoint.load(tmp_path / "run" / "last.pt")
    assert good["step"] == 15  # validated and saved mid-streak: the weights are still those of step 12
    assert all(torch.isfinite(v).all() for v in good["model"].values())
    assert not (tmp_path / "run" / "best.pt").exists() or checkpoint.load(tmp_path / "run" / "best.pt")["step"] <= 15


def test_patience_stops_early(tmp_path, lm_task):
    cfg = TrainConfig(out=str(tmp_path / "run"), steps=200, eval_every=2, lr=1e-9, warmup=0, device="cpu",
                      patience=2)
    summary = Trainer(lm_task, cfg).fit()
    assert summary["stopped_early"] and summary["step"] < 200


def test_tensorboard_and_resolved_config(tmp_path, text_file):
    out = tmp_path / "run"
    proc = run_main("train", *train_args(text_file, out, steps=6, eval_every=3)[1:], "--tensorboard", "--patience", "5")
    assert proc.returncode == 0, proc.stderr
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["patience"] == 5 and config["task_config"]["hidden"] == 32
    assert config["resolved"] == {"device": "cpu", "precision": "fp32", "world_size": 1}


def test_checkpoint_with_pickled_code_is_refused(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    path = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "task": "lm", "model": Exploit()}, path)
    with pytest.raises(UserError, match="refused"):
        checkpoint.load(path)
    assert not (tmp_path / "pwned").exists()
    assert_one_line_error(run_main("evaluate", "lm", "--checkpoint", path), "refused")


def test_newer_format_and_wrong_task_are_refused(tmp_path):
    newer = tmp_path / "newer.pt"
    torch.save({"format_version": checkpoint.FORMAT_VERSION + 1, "task": "lm"}, newer)
    with pytest.raises(UserError, match="newer"):
        checkpoint.load(newer)
    other = tmp_path / "kws.pt"
    checkpoint.save({"task": "kws"}, other)
    with pytest.raises(UserError, match="'kws' checkpoint, not a 'lm'"):
        checkpoint.load(other, task="lm")


def test_truncated_at_any_byte_is_refused(tmp_path):
    path = tmp_path / "ok.pt"
    checkpoint.save({"task": "lm", "model": {"w": torch.randn(64, 64)}, "note": "x" * 100}, path)
    blob = path.read_bytes()
    cut = tmp_path / "cut.pt"
    for n in sorted({0, 1, 2, 3, 4, 10, 100, len(blob) // 2, len(blob) - 30, len(blob) - 1, *range(0, len(blob), 997)}):
        cut.write_bytes(blob[:n])
        with pytest.raises(UserError):
            checkpoint.load(cut)
