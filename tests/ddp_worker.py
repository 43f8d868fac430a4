"""Trains a tiny LM with the real Trainer and saves this rank's weights: run once alone, once under
torchrun with 2 gloo processes (tests/test_distributed.py compares them)."""
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from seqapp.text.task import LMConfig, LMTask  # noqa: E402
from seqapp.trainer import TrainConfig, Trainer  # noqa: E402

data, out = sys.argv[1], Path(sys.argv[2])
task = LMTask(LMConfig(data=data, hidden=16, layers=2, batch_size=8, seq_len=16, dropout=0.0, eval_streams=4))
trainer = Trainer(task, TrainConfig(out=str(out), steps=8, eval_every=4, device="cpu", seed=3))
summary = trainer.fit()
torch.save(trainer.model.state_dict(), out / f"rank{trainer.dist.rank}.pt")
(out / f"rank{trainer.dist.rank}.json").write_text(json.dumps(summary))
