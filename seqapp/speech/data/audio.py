"""load_audio(): any WAV/FLAC file -> mono float32 at 16 kHz, exactly one second. One error per bad file."""
from __future__ import annotations

import struct
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ...errors import UserError

if TYPE_CHECKING:  # annotations only: reading a stream needs no torch
    import torch

SAMPLE_RATE = 16_000
AUDIO_SUFFIXES = (".wav", ".flac")
# Beyond these a header is lying, and reading or resampling what it claims would exhaust memory.
RATES = (1_000, 384_000)
MAX_CHANNELS = 64
MAX_SAMPLES = 1 << 28  # 256M samples: over an hour of 48 kHz stereo


def resample(samples: np.ndarray, rate: int) -> np.ndarray:
    """float32 mono at `rate` -> 16 kHz with libsoxr (python-soxr, librosa's default resampler). Its memory
    and time grow with the audio, never with the ratio: torchaudio's polyphase kernel grows with
    (rate / gcd) x (16000 / gcd), and a rate such as 44,101 Hz asked it for gigabytes."""
    import soxr

    if rate == SAMPLE_RATE:
        return samples
    return soxr.resample(samples, rate, SAMPLE_RATE, quality="HQ").astype(np.float32, copy=False)


def read_audio(path: str | Path) -> torch.Tensor:
    """The whole file as mono float32 at 16 kHz, any length."""
    import torch

    import soundfile as sf

    path = checked_path(path)
    with readable(path):
        info = sf.info(str(path))  # check what the header claims before reading anything
        check_format(path, info.samplerate, info.channels)
        if info.frames * info.channels > MAX_SAMPLES:
            raise UserError(f"{path}: implausible audio ({info.channels} channels, {info.frames} frames)")
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
    if samples.shape[0] == 0:
        raise UserError(f"{path}: the file holds no audio samples")
    return torch.from_numpy(np.ascontiguousarray(resample(finite(samples, path).mean(axis=1), rate)))


def checked_path(path: str | Path) -> Path:
    """An existing, non-empty file (a WAV whose data chunk is all there) or one line saying why not."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"audio file not found: {path}")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: empty file, not audio")
    if path.suffix.lower() == ".wav":
        check_wav_complete(path)
    return path


@contextmanager
def readable(path: Path):
    """libsndfile's many complaints about a file, as one line naming it."""
    import soundfile as sf

    try:
        yield
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, EOFError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{path}: not a readable audio file ({reason[:120]})") from None


def check_format(name, rate: int, channels: int) -> None:
    if not RATES[0] <= rate <= RATES[1]:
        raise UserError(f"{name}: unsupported sample rate {rate} Hz (expected {RATES[0]}-{RATES[1]})")
    if not 1 <= channels <= MAX_CHANNELS:
        raise UserError(f"{name}: implausible channel count {channels}")


def finite(block: np.ndarray, name) -> np.ndarray:
    if not np.isfinite(block).all():
        raise UserError(f"{name}: the audio holds NaN or infinite samples")
    return block


def fit_to_one_second(wave: torch.Tensor) -> torch.Tensor:
    """Pad short clips evenly on both sides; crop long ones to their loudest second."""
    import torch

    n = SAMPLE_RATE
    if len(wave) < n:
        left = (n - len(wave)) // 2
        return torch.nn.functional.pad(wave, (left, n - len(wave) - left))
    if len(wave) > n:
        energy = torch.nn.functional.avg_pool1d((wave**2)[None, None], n, stride=n // 10).flatten()
        start = int(energy.argmax()) * (n // 10)
        return wave[start: start + n]
    return wave


def load_audio(path: str | Path) -> torch.Tensor:
    return fit_to_one_second(read_audio(path))


def check_wav_complete(path: Path) -> None:
    """A WAV whose data chunk promises more bytes than the file holds is truncated (libsndfile would
    quietly read what is there)."""
    with path.open("rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
            raise UserError(f"{path}: not a WAV file (no RIFF/WAVE header)")
        size = path.stat().st_size
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                raise UserError(f"{path}: truncated WAV (no data chunk)")
            cid, length = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"data":
                if head[:4] == b"RIFF" and f.tell() + length > size:
                    raise UserError(f"{path}: truncated WAV (the header promises {length} data bytes, "
                                    f"{size - f.tell()} are there)")
                return
            f.seek(length + (length & 1), 1)


def word_bounds(waves: torch.Tensor, floor_db: float = -20.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Where the word is in each clip (batch, samples): the first and last 10 ms frame whose energy is within
    `floor_db` of the clip's loudest frame, as sample indices [start, end). A silent clip gives (0, 0)."""
    import torch

    frame = SAMPLE_RATE // 100
    batch, n = waves.shape
    energy = waves[:, : n // frame * frame].reshape(batch, -1, frame).pow(2).mean(-1)
    peak = energy.max(dim=1, keepdim=True).values
    active = (energy >= peak * 10 ** (floor_db / 10)) & (energy > 1e-8)
    index = torch.arange(energy.shape[1], device=waves.device)
    start = torch.where(active, index, energy.shape[1]).min(dim=1).values
    end = torch.where(active, index + 1, 0).max(dim=1).values
    start = torch.where(end > 0, start, 0)
    return start * frame, end * frame


def audio_files(paths) -> list[Path]:
    """The clips named: files as given, folders as their .wav and .flac files (a folder with none is an error)."""
    files = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.name.lower().endswith(AUDIO_SUFFIXES))
            if not found:
                raise UserError(f"{p}: no .wav or .flac files in this folder")
            files += found
        else:
            files.append(p)
    return files
