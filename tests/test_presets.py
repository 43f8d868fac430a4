"""Every preset in configs/ is valid: known settings, right types, and a model that builds."""
from pathlib import Path

import pytest

from seqapp.config import resolve
from seqapp.speech.settings import KWSConfig, build_model
from seqapp.text.model import LanguageModel
from seqapp.text.task import LMConfig, model_config
from seqapp.trainer import TrainConfig

ALL = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.json"))
CONFIGS = [p for p in ALL if not p.stem.startswith("tune_")]
SPACES = [p for p in ALL if p.stem.startswith("tune_")]


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_preset_builds(path):
    if path.stem.startswith("lm"):
        task_cfg, train_cfg = resolve({"config": str(path)}, LMConfig, TrainConfig)
        LanguageModel(model_config(task_cfg.check(), 66))
    else:
        task_cfg, train_cfg = resolve({"config": str(path)}, KWSConfig, TrainConfig)
        build_model(task_cfg.check())
        if task_cfg.verifier:  # the second stage's preset ships too, and builds a clip model
            from seqapp.speech.training.recipe import verifier_settings

            clip_cfg, clip_train = verifier_settings(task_cfg, str(path.parents[1] / task_cfg.verifier))
            assert build_model(clip_cfg.check()).cfg.bidirectional and not clip_cfg.streaming
            clip_train.check()
    train_cfg.check()
    assert train_cfg.out.startswith("runs/")


def test_presets_and_search_spaces_ship():
    assert {p.stem for p in CONFIGS} >= {"lm_cpu", "lm_gpu", "kws_cpu", "kws_stream"}
    assert {p.stem for p in SPACES} >= {"tune_lm", "tune_kws", "tune_synth"}


@pytest.mark.parametrize("path", SPACES, ids=[p.stem for p in SPACES])
def test_search_space_names_only_settings_of_its_task(path):
    from dataclasses import fields

    from seqapp.long_range.task import SynthConfig
    from seqapp.tune import load_space

    config = {"lm": LMConfig, "kws": KWSConfig, "synth": SynthConfig}[path.stem.split("_")[1]]  # tune_TASK[_...]
    known = {f.name for cls in (config, TrainConfig) for f in fields(cls)}
    assert load_space(path, known)
