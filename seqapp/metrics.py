"""Run logging: JSONL metrics, optional TensorBoard, and a PNG of the curves drawn from the JSONL."""
from __future__ import annotations

import json
from pathlib import Path


class MetricsLog:
    def __init__(self, out: Path, tensorboard: bool = False, resume_step: int | None = None):
        self.path = out / "metrics.jsonl"
        self.png = out / "curves.png"
        if resume_step is not None:
            self._truncate_after(resume_step)
        elif self.path.exists():
            self.path.unlink()
        self.tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(log_dir=str(out / "tensorboard"), purge_step=resume_step)

    def _truncate_after(self, step: int) -> None:
        """A killed run may have logged past its last checkpoint; drop those lines before resuming."""
        if not self.path.exists():
            return
        kept = [line for line in self.path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
        self.path.write_text("".join(line + "\n" for line in kept))

    def write(self, split: str, step: int, values: dict) -> None:
        row = {"split": split, "step": step, **values}
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        if self.tb is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)):
                    self.tb.add_scalar(f"{split}/{key}", value, step)
            self.tb.flush()

    def plot(self, metric: str) -> None:
        plot_curves(self.path, self.png, metric)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def plot_curves(jsonl: Path, png: Path, metric: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in jsonl.read_text().splitlines() if line]
    train = [r for r in rows if r["split"] == "train" and "loss" in r]
    val = [r for r in rows if r["split"] == "val" and metric in r]
    fig, ax = plt.subplots(figsize=(7, 4))
    if train:
        ax.plot([r["step"] for r in train], [r["loss"] for r in train], label="train loss", alpha=0.7)
    if val and "loss" in val[0]:
        ax.plot([r["step"] for r in val], [r["loss"] for r in val], "o-", label="val loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    if val and metric != "loss":
        ax2 = ax.twinx()
        ax2.plot([r["step"] for r in val], [r[metric] for r in val], "s--", color="tab:green", label=f"val {metric}")
        ax2.set_ylabel(metric)
        ax2.legend(loc="center right")
    ax.legend(loc="upper right")
    fig.tight_layout()
    tmp = png.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(png)
