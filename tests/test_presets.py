"""Every preset in configs/ is valid: known settings, right types, and a model that builds."""
from pathlib import Path

import pytest

from seqapp.cli import resolve
from seqapp.speech.task import KWSConfig, build_model
from seqapp.text.model import LanguageModel
from seqapp.text.task import LMConfig, model_config
from seqapp.trainer import TrainConfig

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.json"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_preset_builds(path):
    if path.stem.startswith("lm"):
        task_cfg, train_cfg = resolve({"config": str(path)}, LMConfig, TrainConfig)
        LanguageModel(model_config(task_cfg.check(), 66))
    else:
        task_cfg, train_cfg = resolve({"config": str(path)}, KWSConfig, TrainConfig)
        build_model(task_cfg.check())
    train_cfg.check()
    assert train_cfg.out.startswith("runs/")


def test_three_presets_ship():
    assert {p.stem for p in CONFIGS} >= {"lm_cpu", "lm_gpu", "kws_cpu"}
