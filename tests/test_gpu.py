"""Mixed precision and GPU checkpoints. These need CUDA and skip cleanly without it."""
import pytest
import torch

from seqapp import checkpoint
from seqapp.device import autocast, pick_precision
from seqapp.text.task import LMConfig, LMTask, model_from_checkpoint
from seqapp.trainer import TrainConfig, Trainer

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_cpu_precision_defaults_to_fp32():
    assert pick_precision("auto", torch.device("cpu")) == "fp32"
    with autocast(torch.device("cpu"), "fp32"):
        assert not torch.is_autocast_enabled()


@cuda
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_mixed_precision_training_learns(tmp_path, text_file, precision, cell):
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("no bf16 on this GPU")
    task = LMTask(LMConfig(data=str(text_file), cell=cell, hidden=64, batch_size=8, seq_len=32))
    cfg = TrainConfig(out=str(tmp_path / "run"), steps=60, eval_every=30, lr=3e-3, device="cuda",
                      precision=precision)
    trainer = Trainer(task, cfg)
    summary = trainer.fit()
    assert trainer.precision == precision and summary["skipped_nonfinite"] < 10
    assert summary["best"] < 3.0


@cuda
def test_gpu_checkpoint_generates_on_cpu(tmp_path, text_file):
    from seqapp.text.generate import generate

    task = LMTask(LMConfig(data=str(text_file), hidden=32, batch_size=4, seq_len=16))
    Trainer(task, TrainConfig(out=str(tmp_path / "run"), steps=4, eval_every=4, device="cuda")).fit()
    model, tokenizer = model_from_checkpoint(checkpoint.load(tmp_path / "run" / "best.pt", map_location="cpu"))
    assert next(model.parameters()).device.type == "cpu"
    text = generate(model, tokenizer, "All:", 20, seed=1)
    assert len(text) > 10  # 20 tokens; an untrained model samples the 'unknown' id, which prints nothing


@cuda
def test_gpu_checkpoint_exports_on_the_cpu(tmp_path, text_file):
    from conftest import run_cli

    task = LMTask(LMConfig(data=str(text_file), hidden=32, batch_size=4, seq_len=16))
    Trainer(task, TrainConfig(out=str(tmp_path / "run"), steps=4, eval_every=4, device="cuda")).fit()
    result = run_cli("-m", "seqapp", "export", "--checkpoint", tmp_path / "run" / "best.pt", "--out", tmp_path / "lm.onnx",
                     env={"CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 0 and (tmp_path / "lm.onnx").stat().st_size > 0, result.stderr
