"""`seqapp tune TASK`: Optuna over any task's settings. Each trial trains under the same time budget, so trials
compare fairly in time; its validations (spread evenly over the budget) are reported to Optuna, which prunes
poor trials from them (median rule). TPE sampling. The study lives in an Optuna storage (an SQLite file by
default), so a stopped tuning run resumes, and several processes or machines can tune one study together
(a server database URL, e.g. postgresql://user:password@host/db). Knows no task: each task's cli.py passes
its config class, task class and a way to build the task."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from .config import parse_duration, read_json_object, resolve
from .errors import UserError, positive


def add_tune_flags(p) -> None:
    p.add_argument("--space", help="a JSON search space (default: configs/tune_TASK.json)")
    p.add_argument("--trials", type=int, default=20, help="stop when the study holds this many finished trials")
    p.add_argument("--trial-budget", type=parse_duration, default=180.0, help="each trial's training time (3m)")
    p.add_argument("--storage", help="an Optuna storage URL (default: sqlite:///OUT/study.db)")
    p.add_argument("--study-name", help="default: the task's name")
    p.add_argument("--sampler-seed", type=int, default=0,
                   help="seeds the sampler (plus the trials already in the study); give each process tuning one "
                        "study its own")
    p.add_argument("--prune-startup", type=int, default=3, help="complete trials before any is pruned")


TUNE_FLAGS = ("space", "trials", "trial_budget", "storage", "study_name", "sampler_seed", "prune_startup", "resume",
              "handler")


def load_space(path: Path, known: set[str]) -> dict:
    """{setting: {"low", "high"[, "log", "step"]} or {"choices": [...]}}; one line for anything else."""
    space = read_json_object(path, "search space")
    for name, spec in space.items():
        if name not in known:
            raise UserError(f"{path}: {name} is not a setting of this task")
        ok = isinstance(spec, dict) and (
            (isinstance(spec.get("choices"), list) and spec["choices"]) or
            (isinstance(spec.get("low"), (int, float)) and isinstance(spec.get("high"), (int, float))
             and spec["low"] < spec["high"] and (spec["low"] > 0 or not spec.get("log"))))
        if not ok:
            raise UserError(f"{path}: {name} needs {{\"low\": a, \"high\": b}} with a < b (a > 0 with \"log\") "
                            "or {\"choices\": [...]}")
    return space


def starting_point(space: dict, configs) -> dict:
    """The resolved settings' values for the searched names, where the space can hold them."""
    values = {}
    for name, spec in space.items():
        value = next((getattr(c, name) for c in configs if hasattr(c, name)), None)
        inside = value in spec["choices"] if "choices" in spec else \
            isinstance(value, (int, float)) and spec["low"] <= value <= spec["high"]
        if inside:
            values[name] = value
    return values


def suggest(trial, space: dict) -> dict:
    params = {}
    for name, spec in space.items():
        if "choices" in spec:
            params[name] = trial.suggest_categorical(name, spec["choices"])
        elif isinstance(spec["low"], int) and isinstance(spec["high"], int) and not spec.get("log"):
            params[name] = trial.suggest_int(name, spec["low"], spec["high"], step=spec.get("step", 1))
        else:
            params[name] = trial.suggest_float(name, spec["low"], spec["high"], log=bool(spec.get("log")))
    return params


def run_tuning(args, task_name: str, config_class, task_class, make_task) -> None:
    """make_task(task_config, train_config) -> a Task for one trial."""
    import optuna
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    from . import trainer
    from .trainer import TrainConfig

    positive("--trials", args.trials)
    given = {k: v for k, v in vars(args).items() if k not in TUNE_FLAGS}
    out = Path(given.pop("out", None) or f"runs/tune_{task_name}")
    out.mkdir(parents=True, exist_ok=True)
    known = {f for cls in (config_class, TrainConfig) for f in cls.__dataclass_fields__}
    space_path = Path(args.space or Path(__file__).resolve().parents[1] / "configs" / f"tune_{task_name}.json")
    space = load_space(space_path, known - {"out", "time_budget", "steps"})
    storage = args.storage or f"sqlite:///{out / 'study.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=args.study_name or task_name, storage=storage, load_if_exists=True,
        direction="minimize" if task_class.select_mode == "min" else "maximize",
        pruner=optuna.pruners.MedianPruner(n_startup_trials=args.prune_startup, n_warmup_steps=2))
    # Seeded by the trials already there too: with the seed alone, a resumed run's random start-up draws would
    # repeat the first run's, point for point (measured: four resumed trials re-ran trials 1-4).
    study.sampler = optuna.samplers.TPESampler(seed=args.sampler_seed + len(study.trials))
    finished = (TrialState.COMPLETE, TrialState.PRUNED)
    if not study.trials:  # trial 0 is the preset you start from: the table then shows what tuning bought
        start = starting_point(space, resolve(given, config_class, TrainConfig))
        if start:
            study.enqueue_trial(start)
    done = len(study.get_trials(states=finished))
    print(f"study {study.study_name!r} in {storage}: {done} of {args.trials} trials done; space {space_path}")

    def objective(trial) -> float:
        params = suggest(trial, space)
        values = {**given, **params, "time_budget": args.trial_budget, "out": str(out / f"trial_{trial.number:03d}")}
        task_cfg, train_cfg = resolve(values, config_class, TrainConfig)
        task_cfg.seed = train_cfg.seed
        metric = task_class.select_metric

        def report(k: int, figures: dict) -> None:
            trial.report(figures[metric], k)
            if trial.should_prune():
                raise optuna.TrialPruned()

        summary = trainer.run(make_task(task_cfg, train_cfg), train_cfg, on_validation=report)
        return summary["best"]

    def progress(study, trial) -> None:
        shown = "pruned" if trial.state == TrialState.PRUNED else \
            f"{task_class.select_metric} {trial.value:.4f}" if trial.value is not None else trial.state.name.lower()
        seconds = (trial.datetime_complete - trial.datetime_start).total_seconds() if trial.datetime_complete else 0
        best = study.best_value if any(t.state == TrialState.COMPLETE for t in study.trials) else float("nan")
        print(f"trial {trial.number}: {shown} in {seconds:.0f} s, {trial.params}; best so far {best:.4f}", flush=True)

    if done < args.trials:
        study.optimize(objective, callbacks=[MaxTrialsCallback(args.trials, states=finished), progress],
                       catch=(UserError,))
    write_outputs(study, out, given, args.trial_budget, task_class)


def write_outputs(study, out: Path, given: dict, budget: float, task_class) -> None:
    """trials.csv, best.json (a preset train.py --config takes), history.png, importances.png."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    names = sorted({k for t in trials for k in t.params})
    with (out / "trials.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["number", "state", task_class.select_metric, "seconds", *names])
        for t in trials:
            seconds = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete else ""
            writer.writerow([t.number, t.state.name.lower(), t.value, seconds, *(t.params.get(n, "") for n in names)])
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    pruned = sum(t.state == TrialState.PRUNED for t in trials)
    print(f"{len(complete)} complete, {pruned} pruned; table: {out / 'trials.csv'}")
    if not complete:
        return
    preset = {}
    if "config" in given:
        preset.update(read_json_object(given["config"], "config file"))
    preset.update({k: v for k, v in given.items() if k not in ("config", "command", "task", "data")})
    preset.update(study.best_params)
    preset["time_budget"] = budget
    preset.pop("out", None)
    (out / "best.json").write_text(json.dumps(preset, indent=2) + "\n")
    print(f"best: trial {study.best_trial.number}, {task_class.select_metric} {study.best_value:.4f}, "
          f"{study.best_params}; preset: {out / 'best.json'} (train.py ... --config {out / 'best.json'})")
    plot(study, out)


def plot(study, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as ovm
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna marks its matplotlib plots experimental
        for name, draw in (("history", ovm.plot_optimization_history), ("importances", ovm.plot_param_importances)):
            try:
                ax = draw(study)
            except (ValueError, RuntimeError) as e:  # importances need at least two complete, differing trials
                print(f"note: no {name} plot ({str(e).splitlines()[0][:100]})", file=sys.stderr)
                continue
            fig = ax.figure if hasattr(ax, "figure") else ax[0].figure
            fig.set_size_inches(7, 4.2)
            fig.tight_layout()
            fig.savefig(out / f"{name}.png", dpi=110)
            plt.close(fig)

