"""Training to the clock, and tuning: durations, a run that ends on time with its schedule decayed, resume
across the budget, and a tiny Optuna study that prunes, resumes and writes a preset train.py takes."""
import json

import pytest
import torch

from conftest import assert_one_line_error, run_main
from seqapp import checkpoint
from seqapp.config import parse_duration
from seqapp.errors import UserError
from seqapp.long_range.task import SynthConfig, SynthTask
from seqapp.trainer import TrainConfig, Trainer


@pytest.mark.parametrize("text,seconds", [("90s", 90), ("10m", 600), ("1h", 3600), ("1h30m", 5400), ("2.5m", 150),
                                          ("600", 600), ("0.5", 0.5)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0", "-5", "abc", "10x", "", "m", "nan", "inf", "1h-5m"])
def test_bad_durations_are_refused(text):
    with pytest.raises(UserError, match="--time-budget"):
        parse_duration(text)


def test_bad_budget_through_the_cli(tmp_path):
    assert_one_line_error(run_main("train", "synth", "--time-budget", "ten minutes", "--out", tmp_path / "r"),
                          "--time-budget")


def synth():
    return SynthTask(SynthConfig(problem="adding", length=10, cell="gru", hidden=8, batch_size=8, val_size=32))


def test_a_budget_run_ends_on_time_with_its_schedule_decayed(tmp_path):
    budget = 2.0
    trainer = Trainer(synth(), TrainConfig(out=str(tmp_path), time_budget=budget, lr=1e-2, device="cpu"))
    summary = trainer.fit()
    last = torch.load(tmp_path / "last.pt", weights_only=True)
    assert last["end_step"] == summary["step"] == trainer.step  # it ended at the step it fixed
    assert trainer.train_seconds >= 0.8 * budget  # the end was fixed when the decay began (80% of the budget) ...
    assert trainer.train_seconds < 3 * budget     # ... from the speed measured, so it ends near the budget
    assert trainer.scheduler.get_last_lr()[0] == 0.0  # wsd decayed to the end
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in rows if r["split"] == "val"]
    assert len(val) >= 5 and val[-1]["step"] == summary["step"]  # validations spread over the budget


class Interrupted(Exception):
    pass


def test_resume_across_the_budget_ends_at_the_same_step(tmp_path):
    cfg = TrainConfig(out=str(tmp_path), time_budget=2.0, device="cpu", budget_evals=20)
    first = Trainer(synth(), cfg)

    def stop_once_the_end_is_fixed(k, figures):
        if first.end_step is not None and first.step < first.end_step:
            raise Interrupted

    first.on_validation = stop_once_the_end_is_fixed
    with pytest.raises(Interrupted):
        first.fit()
    saved = checkpoint.load(tmp_path / "last.pt")
    assert saved["end_step"] == first.end_step and saved["train_seconds"] > 0
    resumed = Trainer(synth(), cfg, saved)
    assert resumed.end_step == first.end_step and resumed.step == saved["step"]
    resumed.fit()
    assert resumed.step == first.end_step


def test_a_tiny_tuning_study_prunes_resumes_and_writes_a_preset(tmp_path):
    import optuna

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="synth", storage=storage, direction="minimize")
    study.enqueue_trial({"lr": 0.01})   # learns
    study.enqueue_trial({"lr": 1e-6})   # cannot: the pruner stops it from its validations
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"lr": {"low": 1e-6, "high": 0.05, "log": True}}))
    args = ["tune", "synth", "--task", "adding", "--length", "10", "--hidden", "8", "--val-size", "32",
            "--space", space, "--trial-budget", "1.5s", "--storage", storage, "--out", tmp_path / "tune",
            "--prune-startup", "1", "--device", "cpu"]
    first = run_main(*args, "--trials", "3")
    assert first.returncode == 0, first.stderr
    states = [t.state.name for t in optuna.load_study(study_name="synth", storage=storage).trials]
    assert states[:2] == ["COMPLETE", "PRUNED"] and len(states) == 3
    again = run_main(*args, "--trials", "4")  # the same study, one more trial
    assert again.returncode == 0, again.stderr
    trials = optuna.load_study(study_name="synth", storage=storage).trials
    assert len(trials) == 4
    assert trials[3].params != trials[2].params  # a resumed run draws new points, not the first run's again
    out = tmp_path / "tune"
    assert (out / "trials.csv").read_text().count("\n") == 5 and (out / "history.png").exists()
    preset = json.loads((out / "best.json").read_text())
    assert preset["time_budget"] == 1.5 and "lr" in preset
    trained = run_main("train", "synth", "--config", out / "best.json", "--out", tmp_path / "again")
    assert trained.returncode == 0, trained.stderr
