"""What the server serves: the models, each loaded once and shared, and the limits on what a client may ask."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError


@dataclass
class Limits:
    connections: int = 16            # connections at once (writers, listeners and uploads)
    frame_bytes: int = 64 * 1024     # one message: 2 s of 16-bit audio, or a request
    audio_speed: float = 2.0         # a listener may send audio at most this much faster than real time ...
    audio_burst_s: float = 5.0       # ... after a head start of this many seconds
    generate_chars: int = 5000       # the longest text one request may ask for
    upload_bytes: int = 50 * 2**20   # a file to spot keywords in
    upload_seconds: float = 3600.0   # ... and its length
    posterior_every_s: float = 0.1   # how often a listener is sent posteriors for the live plot


class Stopped(Exception):
    pass


class Models:
    """The checkpoints, each loaded once: a language model and tokenizer, and a streaming spotter."""

    def __init__(self, lm: str | None = None, kws: str | None = None, false_alarms_per_hour: float | None = None,
                 threshold: float | None = None):
        from ..speech.listening.run import open_spotter
        from ..speech.listening.runtime import BUNDLED

        self.lm = self.tokenizer = self.spotter = None
        if kws is None and BUNDLED.is_file():  # no spotter named: the one that ships with seqapp
            kws = str(BUNDLED)
        self.lm_path, self.kws_path = lm, kws
        if lm:
            import torch

            from .. import checkpoint
            from ..text.task import model_from_checkpoint

            torch.set_num_threads(1)  # many small streams at once: one thread each, no hand-offs
            self.lm, self.tokenizer = model_from_checkpoint(checkpoint.load(lm, task="lm"))
        if kws:
            self.spotter = open_spotter(kws, threshold, false_alarms_per_hour=false_alarms_per_hour)
        if self.lm is None and self.spotter is None:
            raise UserError("serve needs --lm CHECKPOINT, --kws CHECKPOINT, or both")

    def info(self) -> dict:
        out = {"lm": None, "kws": None}
        if self.lm is not None:
            out["lm"] = {"checkpoint": Path(self.lm_path).name}
        if self.spotter is not None:
            names = self.spotter.names
            out["kws"] = {"checkpoint": Path(self.kws_path).name, "labels": names,
                          "keywords": [n for n in names if not n.startswith("_")],
                          "two_stage": self.spotter.verifier is not None, "operating_point": self.spotter.note,
                          "threshold": self.spotter.decision.threshold}
        return out


def check_generation(request: dict, limits: Limits) -> dict:
    """The generation settings of a request, checked as `seqapp generate` checks them, capped in length."""
    from ..text.generate import check_sampling

    if not isinstance(request, dict):
        raise UserError("expected a JSON object")
    try:
        settings = {"prompt": str(request.get("prompt", "\n"))[:2000],
                    "length": int(request.get("length", 500)),
                    "temperature": float(request.get("temperature", 0.8)),
                    "top_k": int(request["top_k"]) if request.get("top_k") not in (None, "", 0) else None,
                    "top_p": float(request["top_p"]) if request.get("top_p") not in (None, "", 0) else None,
                    "seed": int(request.get("seed", 1))}
    except (TypeError, ValueError):
        raise UserError("length, top_k and seed must be integers; temperature and top_p numbers") from None
    if not 1 <= settings["length"] <= limits.generate_chars:
        raise UserError(f"length must be 1-{limits.generate_chars} characters")
    check_sampling(settings["length"], settings["temperature"], settings["top_k"], settings["top_p"])
    return settings
