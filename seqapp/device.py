"""Device and precision choice, in one place."""
from __future__ import annotations

import contextlib

import torch

from .errors import UserError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def pick_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise UserError("--device cuda was asked for, but no CUDA GPU is available (use --device cpu)")
        return torch.device("cuda", local_rank)
    if name == "cpu":
        return torch.device("cpu")
    raise UserError(f"unknown device {name!r} (choose auto, cpu or cuda)")


def pick_precision(name: str, device: torch.device) -> str:
    """auto: bf16 on GPUs that have it, fp16 (with a GradScaler) on older GPUs, fp32 on the CPU."""
    if name not in PRECISIONS:
        raise UserError(f"unknown precision {name!r} (choose one of {', '.join(PRECISIONS)})")
    if name == "auto":
        if device.type != "cuda":
            return "fp32"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if name == "fp16" and device.type != "cuda":
        raise UserError("--precision fp16 needs a CUDA GPU; on the CPU use fp32 or bf16")
    return name


def autocast(device: torch.device, precision: str):
    """The autocast context for a forward pass, or a no-op for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def keep_freed_memory() -> None:
    """On glibc, keep freed blocks for the next step instead of handing them back: by default a block over a few MB
    is unmapped when freed and page-faulted in again when the next step asks for one (with the speech embedding, a
    training step took 1.5x as long on 2 cores: docs/speech_embedding.md). Nothing elsewhere."""
    import ctypes

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: blocks up to 32 MB (glibc's largest setting) come from the heap
    mallopt(-1, 1 << 30)   # M_TRIM_THRESHOLD: the heap keeps up to 1 GB free at its top
