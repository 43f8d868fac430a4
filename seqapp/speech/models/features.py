"""The batched front end, an nn.Module on the training device: waveform augmentation (training only), log-mel,
MFCC or the pretrained speech embedding (embedding.py), normalisation, SpecAugment (training only). Its random
draws come from torch's global generator, which the trainer seeds per step."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torchaudio.transforms as T
from torch import nn

from ...errors import UserError
from . import embedding
from ..data.audio import SAMPLE_RATE

FEATURES = ("embedding", "logmel", "mfcc")
EMBEDDING_SCALE = 16.0  # the embedding's spread on speech (measured): clip models read it divided by this


@dataclass
class FeatureConfig:
    features: str = "logmel"     # embedding (pretrained, frozen: 96 values every 80 ms) | logmel | mfcc
    tune_embedding: int = 0      # embedding: fine-tune its last this many blocks (0-5) with the head
    n_mels: int = 40
    win_ms: float = 25.0
    hop_ms: float = 10.0
    frame_stack: int = 2         # join this many frames into one encoder step: half the steps, same context
    # "utterance": normalise each clip by its own statistics (reads the whole clip: clip models only; the embedding
    # is only scaled); "fixed": by per-band statistics measured once on training data (causal: streaming models)
    normalize: str = "utterance"
    center: bool = True          # torchaudio's centred frames read 16 ms ahead; streaming uses False
    # training-only augmentation
    shift_ms: float = 100.0      # random time shift, either way
    speed: float = 0.15          # speed perturbation: factor drawn from 1 +- speed
    gain_db: float = 6.0         # random gain, either way
    noise_prob: float = 0.8      # chance of mixing in background noise ...
    snr_db: tuple = (0.0, 20.0)  # ... at an SNR drawn from this range
    clip_seconds: float = 2.0    # embedding, clip models: a 1 s clip is centred in this much silence (16 vectors)
    eq_db: float = 0.0           # a random smooth equaliser (a microphone's response), up to this many dB either way
    freq_masks: int = 2          # SpecAugment
    freq_mask_width: int = 7
    time_masks: int = 2
    time_mask_width: int = 15

    def check(self) -> "FeatureConfig":
        if self.features not in FEATURES:
            raise UserError(f"unknown features {self.features!r} (choose {', '.join(FEATURES)})")
        if self.normalize not in ("utterance", "fixed"):
            raise UserError(f"unknown normalisation {self.normalize!r} (choose utterance or fixed)")
        if (self.tune_embedding and self.features != "embedding") or not 0 <= self.tune_embedding <= 5:
            raise UserError(f"--tune-embedding takes 0 to 5 blocks of --features embedding, got {self.tune_embedding}")
        return self


class FrontEnd(nn.Module):
    def __init__(self, cfg: FeatureConfig):
        super().__init__()
        self.cfg = cfg.check()
        win, hop = int(SAMPLE_RATE * cfg.win_ms / 1000), int(SAMPLE_RATE * cfg.hop_ms / 1000)
        self.n_fft, self.hop, self.bands = 512, hop, cfg.n_mels
        mel = dict(n_fft=self.n_fft, win_length=win, hop_length=hop, n_mels=cfg.n_mels, f_min=20.0, f_max=7600.0,
                   center=cfg.center)
        if cfg.features == "embedding":  # a "frame" is one vector: 80 ms apart, each reading 782 ms
            self.transform = embedding.EmbeddingFrontEnd(tuned=cfg.tune_embedding)
            self.n_fft, self.hop, self.bands = embedding.VECTOR_SPAN, embedding.VECTOR_HOP, embedding.DIM
        elif cfg.features == "mfcc":
            self.transform = T.MFCC(SAMPLE_RATE, n_mfcc=cfg.n_mels, log_mels=True, melkwargs=mel)
        else:
            self.transform = T.MelSpectrogram(SAMPLE_RATE, **mel)
        self.freq_mask = T.FrequencyMasking(cfg.freq_mask_width, iid_masks=True)
        self.time_mask = T.TimeMasking(cfg.time_mask_width, iid_masks=True)
        self.register_buffer("noise", torch.zeros(0), persistent=False)  # set by the task, never saved
        if cfg.normalize == "fixed":  # measured on training clips by the task, saved with the model
            self.register_buffer("mean", torch.zeros(self.bands))
            self.register_buffer("std", torch.ones(self.bands))

    @property
    def n_features(self) -> int:
        return self.bands * self.cfg.frame_stack

    def set_noise(self, noise: torch.Tensor) -> None:
        self.noise = noise.to(self.noise.device)

    def raw_features(self, wave: torch.Tensor, augment: bool = False) -> torch.Tensor:
        """wave (batch, samples) -> log-mel, MFCC or embedding (batch, bands, frames), not normalised; through a
        random equaliser when augmenting."""
        mel_bands = embedding.MEL_BANDS if self.cfg.features == "embedding" else self.cfg.n_mels
        eq = self.equaliser(len(wave), mel_bands, wave.device) if augment and self.cfg.eq_db else None
        if self.cfg.features == "embedding":
            return self.transform(wave.float(), eq)
        x = self.transform(wave.float())
        x = torch.log(x + 1e-6) if self.cfg.features == "logmel" else x
        return x if eq is None else x + eq[:, :, None] * (torch.log(torch.tensor(10.0)) / 10)  # dB -> log power

    def forward(self, wave: torch.Tensor, augment: bool | None = None) -> torch.Tensor:
        """wave (batch, samples) -> features (batch, frames // frame_stack, n_features)."""
        augment = self.training if augment is None else augment
        if self.cfg.features == "embedding":
            wave = self.centred(wave)
        if augment:
            wave = self.augment_wave(wave)
        return self.stack(self.normalise(self.raw_features(wave, augment), augment))

    def centred(self, wave: torch.Tensor) -> torch.Tensor:
        """Clips centred in clip_seconds of silence: the embedding's 775 ms windows see all of a word."""
        pad = int(self.cfg.clip_seconds * SAMPLE_RATE) - wave.shape[1]
        return nn.functional.pad(wave, (pad // 2, pad - pad // 2)) if pad > 0 else wave

    def normalise(self, x: torch.Tensor, augment: bool = False) -> torch.Tensor:
        """(batch, bands, frames) -> normalised (batch, frames, bands), SpecAugment when augmenting."""
        if self.cfg.normalize == "fixed":
            x = (x - self.mean[:, None]) / self.std[:, None]
        elif self.cfg.features == "embedding":
            x = x / EMBEDDING_SCALE
        else:
            x = (x - x.mean(dim=-1, keepdim=True)) / (x.std(dim=(-2, -1), keepdim=True) + 1e-5)
        if augment:
            x = x.unsqueeze(1)
            for _ in range(self.cfg.freq_masks):
                x = self.freq_mask(x)
            for _ in range(self.cfg.time_masks):
                x = self.time_mask(x)
            x = x.squeeze(1)
        return x.transpose(1, 2)

    def equaliser(self, batch: int, bands: int, device) -> torch.Tensor:
        """(batch, bands) dB offsets: each a random mix of three slow cosines across the mel bands, scaled to at
        most eq_db either way. Per-utterance normalisation takes out each band's mean, and with it most of this;
        the fixed one (streaming) and the embedding do not."""
        position = torch.linspace(0, torch.pi, bands, device=device)
        basis = torch.stack([torch.cos(k * position) for k in (1, 2, 3)])               # (3, bands)
        curve = (2 * torch.rand(batch, 3, device=device) - 1) @ basis
        peak = curve.abs().amax(1, keepdim=True).clamp_min(1e-6)
        return curve / peak * self.cfg.eq_db * torch.rand(batch, 1, device=device)

    def stack(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, frames, n_mels) -> (batch, frames // k, k * n_mels): k frames per encoder step."""
        k = self.cfg.frame_stack
        if k > 1:
            frames = x.shape[1] // k * k
            x = x[:, :frames].reshape(x.shape[0], frames // k, k * x.shape[2])
        return x

    def augment_wave(self, wave: torch.Tensor, noise: bool = True) -> torch.Tensor:
        cfg, (batch, n), device = self.cfg, wave.shape, wave.device
        # speed perturbation and time shift as one resampling of each clip
        factor = 1 + cfg.speed * (2 * torch.rand(batch, 1, device=device) - 1)
        shift = cfg.shift_ms / 1000 * SAMPLE_RATE * (2 * torch.rand(batch, 1, device=device) - 1)
        centre = (n - 1) / 2
        pos = (torch.arange(n, device=device) - centre) * factor + centre + shift
        wave = interpolate(wave, pos)
        gain = 10 ** (cfg.gain_db * (2 * torch.rand(batch, 1, device=device) - 1) / 20)
        wave = wave * gain
        if noise and len(self.noise) > n and cfg.noise_prob > 0:
            start = (torch.rand(batch, device=device) * (len(self.noise) - n)).long()
            noise = self.noise[start[:, None] + torch.arange(n, device=device)]
            lo, hi = cfg.snr_db
            snr = lo + (hi - lo) * torch.rand(batch, 1, device=device)
            power = wave.pow(2).mean(1, keepdim=True).clamp_min(1e-8)
            scale = torch.sqrt(power / (noise.pow(2).mean(1, keepdim=True).clamp_min(1e-8) * 10 ** (snr / 10)))
            use = (torch.rand(batch, 1, device=device) < cfg.noise_prob).float()
            wave = wave + use * scale * noise
        return wave


def interpolate(wave: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """wave sampled at fractional positions (linear), zero outside the clip."""
    n = wave.shape[1]
    left = pos.floor().long()
    frac = pos - left
    padded = nn.functional.pad(wave, (1, 2))
    li, ri = (left + 1).clamp(0, n + 2), (left + 2).clamp(0, n + 2)
    inside = ((pos > -1) & (pos < n)).float()
    return (padded.gather(1, li) * (1 - frac) + padded.gather(1, ri) * frac) * inside
