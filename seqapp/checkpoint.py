"""Checkpoint I/O: plain dicts, a format version, atomic writes, weights_only loads."""
from __future__ import annotations

import contextlib
import os
import pickle
import re
import tempfile
import zipfile
from pathlib import Path

import torch

from .errors import UserError

FORMAT_VERSION = 1


def save(payload: dict, path: str | Path) -> None:
    """Write to a temp file in the same folder, fsync, then rename: a crash leaves the old file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format_version": FORMAT_VERSION, **payload}
    fd, tmp = temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def temp_beside(path: Path) -> tuple[int, str]:
    """(descriptor, name) of a new empty file beside `path`, to be renamed onto it, with the permissions the
    umask gives a new file (mkstemp's own are 0600: a model shared with other users would be unreadable)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)
    return fd, tmp


@contextlib.contextmanager
def replaced_when_done(path: Path):
    """A temp file's path beside `path`, renamed onto it when the block succeeds and removed when it fails: a
    failed write leaves nothing, and an unwritable folder fails before the work."""
    fd, tmp = temp_beside(path)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load(path: str | Path, task: str | None = None, map_location="cpu") -> dict:
    """Load and check a checkpoint; every way it can be wrong is a one-line UserError."""
    path = Path(path)
    if path.is_dir():
        path = path / "best.pt"
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    unreadable = f"{path} is not a readable checkpoint (corrupt or truncated, or not a PyTorch file)"
    if not zipfile.is_zipfile(path):
        raise UserError(unreadable)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(e))
        what = f"it would run {found.group(1)}" if found else "it holds more than tensors and plain values"
        raise UserError(f"{path} was refused: {what} (seqapp loads checkpoints with weights_only=True)") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError, AttributeError, TypeError):
        raise UserError(unreadable) from None
    if not isinstance(ckpt, dict) or "format_version" not in ckpt or "task" not in ckpt:
        raise UserError(f"{path} is not a seqapp checkpoint")
    version = ckpt["format_version"]
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise UserError(f"{path} has checkpoint format {version}, newer than this seqapp reads ({FORMAT_VERSION}); upgrade seqapp")
    if task is not None and ckpt["task"] != task:
        raise UserError(f"{path} is a {ckpt['task']!r} checkpoint, not a {task!r} one")
    return ckpt
