"""Continuous audio: sources that yield 16 kHz mono blocks (a file of any length and rate, standard input,
the microphone). They need no PyTorch (the listening spotter can run without it: listening/runtime.py)."""
from __future__ import annotations

import struct
import sys
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np

from ...errors import UserError
from .audio import SAMPLE_RATE, check_format, checked_path, finite, readable

BLOCK_SECONDS = 0.1       # what live audio (a pipe, the microphone) is read in
FILE_BLOCK_SECONDS = 1.0  # a file is all there: bigger blocks, fewer calls, the same posteriors


class Resampler:
    """Any rate to 16 kHz, block by block (libsoxr's streaming resampler): never the whole recording."""

    def __init__(self, rate: int):
        import soxr

        self.stream = None if rate == SAMPLE_RATE else soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32")

    def __call__(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        block = np.ascontiguousarray(block, dtype=np.float32)
        return block if self.stream is None else self.stream.resample_chunk(block, last=last)


def file_blocks(path: str | Path, block_seconds: float = BLOCK_SECONDS) -> Iterator[np.ndarray]:
    """A WAV/FLAC file of any length, rate and channel count, as 16 kHz mono float32 blocks."""
    import soundfile as sf

    path = checked_path(path)
    with readable(path), sf.SoundFile(str(path)) as f:
        check_format(path, f.samplerate, f.channels)
        resample, any_audio = Resampler(f.samplerate), False
        for block in f.blocks(blocksize=max(1, int(f.samplerate * block_seconds)), dtype="float32", always_2d=True):
            any_audio = any_audio or len(block) > 0
            yield resample(finite(block, path).mean(axis=1))
        if not any_audio:
            raise UserError(f"{path}: the file holds no audio samples")
        yield resample(np.zeros(0, np.float32), last=True)


PCM_FORMATS = {(1, 8): "u1", (1, 16): "<i2", (1, 32): "<i4", (3, 32): "<f4"}


def pipe_blocks(pipe: BinaryIO, name: str = "standard input",
                block_seconds: float = BLOCK_SECONDS) -> Iterator[np.ndarray]:
    """Raw 16-bit little-endian 16 kHz mono PCM, or a WAV stream when it starts with a RIFF header, read as it
    arrives (a pipe cannot seek, so FLAC, whose header needs seeking to read, is refused)."""
    head = pipe.read(12)
    if not head:
        raise UserError(f"{name}: no audio (the stream is empty)")
    if head.startswith(b"fLaC"):
        raise UserError(f"{name}: FLAC cannot be read from a pipe; pass the file's path, or pipe WAV or raw PCM")
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        rate, channels, dtype = read_wav_header(pipe, name)
        pending = b""
    else:
        rate, channels, dtype = SAMPLE_RATE, 1, np.dtype("<i2")
        pending = head
    frame_bytes = channels * dtype.itemsize
    block_bytes = max(1, int(rate * block_seconds)) * frame_bytes
    resample, any_audio = Resampler(rate), False
    while True:
        data = pipe.read(block_bytes)
        if data:
            pending += data
        usable = len(pending) // frame_bytes * frame_bytes
        if usable:
            samples = decode_pcm(pending[:usable], dtype).reshape(-1, channels).mean(axis=1)
            pending, any_audio = pending[usable:], True
            yield resample(finite(samples, name))
        if not data:
            break
    if pending:
        raise UserError(f"{name}: the stream ends in the middle of a sample frame ({len(pending)} stray bytes)")
    if not any_audio:
        raise UserError(f"{name}: no audio samples after the header")
    yield resample(np.zeros(0, np.float32), last=True)


def decode_pcm(data: bytes, dtype: np.dtype) -> np.ndarray:
    x = np.frombuffer(data, dtype=dtype)
    if dtype.kind == "f":
        return x.astype(np.float32)
    if dtype.kind == "u":  # 8-bit WAV is unsigned
        return (x.astype(np.float32) - 128) / 128
    return x.astype(np.float32) / float(2 ** (8 * dtype.itemsize - 1))


def read_wav_header(pipe: BinaryIO, name: str) -> tuple[int, int, np.dtype]:
    """Read chunks up to "data" and return (rate, channels, sample dtype)."""
    fmt = None
    for _ in range(64):  # a WAV has a handful of chunks before its data; a stream of junk ones is refused
        chunk = pipe.read(8)
        if len(chunk) < 8:
            raise UserError(f"{name}: truncated WAV header")
        cid, length = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        if cid == b"data":
            if fmt is None:
                raise UserError(f"{name}: WAV data before its fmt chunk")
            return fmt
        if length > 1 << 20:
            raise UserError(f"{name}: implausible WAV header chunk ({length} bytes)")
        body = pipe.read(length + (length & 1))
        if cid == b"fmt ":
            if len(body) < 16:
                raise UserError(f"{name}: truncated WAV fmt chunk")
            tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            if tag == 0xFFFE and len(body) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the real tag is in the GUID
                tag = struct.unpack("<H", body[24:26])[0]
            if (tag, bits) not in PCM_FORMATS:
                raise UserError(f"{name}: unsupported WAV encoding (format {tag}, {bits} bits); use 8/16/32-bit PCM "
                                "or 32-bit float")
            check_format(name, rate, channels)
            fmt = (rate, channels, np.dtype(PCM_FORMATS[(tag, bits)]))
    raise UserError(f"{name}: no data chunk in the WAV header")


def open_source(spec: str) -> Iterator[np.ndarray]:
    """`-` for standard input, else a file path."""
    if spec == "-":
        return pipe_blocks(sys.stdin.buffer)
    return file_blocks(spec, FILE_BLOCK_SECONDS)


def microphone_blocks(block_seconds: float = BLOCK_SECONDS, device=None) -> Iterator[np.ndarray]:
    """The default (or a chosen) input device through sounddevice, 16 kHz mono, until interrupted."""
    import queue

    try:
        import sounddevice as sd
    except ImportError:
        raise UserError("listening needs the sounddevice package: pip install 'seqapp[mic]' "
                        "(and, on Debian/Ubuntu, apt install libportaudio2)") from None
    except OSError:  # the module is there but PortAudio is not
        raise UserError("sounddevice could not load PortAudio: apt install libportaudio2 (or your system's "
                        "PortAudio package)") from None
    try:
        sd.check_input_settings(device=device, samplerate=SAMPLE_RATE, channels=1, dtype="float32")
    except Exception as e:  # noqa: BLE001  (PortAudioError and ValueError both mean: no usable input)
        raise UserError(f"no usable audio input device ({str(e).splitlines()[0][:120]})") from None
    blocks: queue.Queue = queue.Queue()

    def callback(indata, frames, time, status):
        blocks.put(indata[:, 0].copy())

    with sd.InputStream(device=device, samplerate=SAMPLE_RATE, channels=1, dtype="float32",
                        blocksize=int(SAMPLE_RATE * block_seconds), callback=callback) as stream:
        while stream.active or not blocks.empty():  # until Ctrl-C, or the device stops
            try:
                yield blocks.get(timeout=0.5)
            except queue.Empty:
                continue
