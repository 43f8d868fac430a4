"""The keyword-spotting tasks: what the trainer needs to train and validate a KeywordSpotter (clips) or a
StreamingSpotter (sequences of words over noise)."""
from __future__ import annotations

import math
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ...encoder import resolve_params
from ...errors import UserError
from ...task import EvalContext
from ..data import dataset as ds
from ..data import other_speech, recordings
from ..data.audio import SAMPLE_RATE, word_bounds
from ..data.keywords import folder_name
from ..data.streams import validation_streams
from ..listening.calibrate import calibrate, operating_point
from ..listening.decision import DecisionConfig
from ..listening.spotter import Spotter, evidence
from ..models.features import FrontEnd
from ..models.spotters import KeywordSpotter, StreamingSpotter
from ..settings import KWSConfig, build_model, voice_draw
from ..voices import synthetic
from . import mining
from .evaluate import score
from .sources import validation_negatives, with_validation_voices, without_keywords


def initial_weights(model, cfg: KWSConfig):
    """The model with --init-from's weights, when given (same architecture, or one line saying not)."""
    if cfg.init_from:
        from ... import checkpoint

        try:
            model.load_state_dict(checkpoint.load(cfg.init_from, task="kws")["model"])
        except RuntimeError:
            raise UserError(f"--init-from {cfg.init_from}: its model does not match these settings") from None
    return model


class KWSTask:
    name = "kws"
    select_metric = "accuracy"
    select_mode = "max"
    unit = "clip"

    def __init__(self, cfg: KWSConfig):
        self.cfg = cfg.check()
        resolve_params(cfg, build_model)
        build_model(cfg)  # refuse impossible models before reading any audio
        self.names = cfg.names()
        root = Path(cfg.data)
        clips, noise_files = ds.scan(root)
        if ds.is_test_set_layout(clips):
            raise UserError(f"{root} is a test-set layout (_silence_/_unknown_ folders); train on the standard "
                            "layout and pass this folder to evaluate.py")
        splits = ds.assign_splits(root, without_keywords(clips, self.keywords, root) if cfg.keywords else clips)
        self.noise = ds.load_noise(noise_files)
        skip = cfg.skip_bad_files
        self.train_waves, self.train_labels, skipped = ds.load_labelled(splits["training"], self.names, skip,
                                                                        "training clips")
        self.val_waves, self.val_labels, skipped_val = ds.load_labelled(splits["validation"], self.names, skip,
                                                                        "validation clips")
        self.skipped = skipped + skipped_val
        if self.skipped:
            print(f"skipped {self.skipped} unreadable clip(s) (--skip-bad-files)", file=sys.stderr)
        self.speech, self.hard = self._add_training_sources()
        if len(self.train_labels) == 0:
            raise UserError(f"{root}: no training clips for the classes {', '.join(self.names)}")
        own = np.isin(np.arange(len(self.train_labels)), self.recorded)
        self.class_indices = [np.flatnonzero((self.train_labels == c) & ~own) for c in range(len(self.names))]
        self.own_indices = [np.flatnonzero((self.train_labels == c) & own) for c in range(len(self.names))]
        self.probs = self._class_probabilities()
        if len(self.val_labels) == 0:
            print("note: no validation clips found; validating on the training clips", file=sys.stderr)
            self.val_waves, self.val_labels = self.train_waves, self.train_labels
        self.val_waves, self.val_labels = ds.add_silence(self.val_waves, self.val_labels, self.names, self.noise,
                                                         cfg.seed)
        if cfg.keywords:
            self.val_waves, self.val_labels = with_validation_voices(cfg, self.names, self.val_waves, self.val_labels)

    @property
    def keywords(self) -> list[str]:
        return [n for n in self.names if n not in (ds.SILENCE, ds.UNKNOWN)]

    def _add_training_sources(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Append other speech's isolated words and the synthetic words to the training clips; return the running
        speech (one long tensor) and the mined hard negatives (clips), drawn from in train_batch."""
        cfg, names = self.cfg, self.names
        waves, labels, speech, hard = [self.train_waves], [self.train_labels], torch.zeros(0), torch.zeros(0, SAMPLE_RATE)
        unknown = names.index(ds.UNKNOWN) if ds.UNKNOWN in names else None
        keywords = self.keywords
        if cfg.other_speech:
            root = other_speech.check_root(cfg.other_speech)
            if unknown is not None:
                paths = other_speech.isolated_words(root, "training", exclude_words=keywords)
                held = [k for k in keywords if any((root / part / folder_name(k)).is_dir() for part in other_speech.ISOLATED)]
                if held and cfg.keywords:
                    print(f"note: {', '.join(held)} in {root} is a keyword: its clips are left out of the negatives",
                          file=sys.stderr)
                words, _ = ds.load_clips([ds.Clip(p, "other") for p in paths], desc="other speech")
                waves.append(words)
                labels.append(np.full(len(words), unknown))
            speech = torch.cat(other_speech.running_speech(root, "training") or [torch.zeros(0)])
        if cfg.synth_positives:
            clips, which = synthetic.positives(keywords, cfg.synth_positives, cfg.seed, cfg.synth_cache,
                                               draw=voice_draw(cfg))
            waves.append(synthetic.in_rooms(clips, cfg.synth_rooms, cfg.seed + 1))
            labels.append(np.array([names.index(keywords[k]) for k in which], dtype=np.int64))
        if cfg.synth_negatives and unknown is not None:
            clips = synthetic.negatives(keywords, cfg.synth_negatives, cfg.seed, cfg.synth_cache, cfg.look_alike_share,
                                        draw=voice_draw(cfg, negatives=True))
            waves.append(synthetic.in_rooms(clips, cfg.synth_rooms, cfg.seed + 2))
            labels.append(np.full(len(clips), unknown))
        if cfg.hard_negatives:
            hard = mining.load_windows(cfg.hard_negatives)
        self.recorded = np.zeros(0, dtype=np.int64)  # indices of the user's own clips among the training clips
        if cfg.recordings:
            clips, which = recordings.load(cfg.recordings, keywords)
            self.recorded = sum(len(w) for w in waves) + np.arange(len(clips))
            waves.append(clips)
            labels.append(np.array([names.index(keywords[k]) for k in which], dtype=np.int64))
        self.train_waves, self.train_labels = torch.cat(waves), np.concatenate(labels).astype(np.int64)
        return speech, hard

    def draw_clip(self, label: int, pick: float, source: float) -> torch.Tensor | None:
        """One training clip of class `label` (None for _silence_, which the caller makes). `pick` chooses within
        the class; for _unknown_, `source` chooses running speech or a mined window by their shares."""
        cfg = self.cfg
        if self.names[label] == ds.UNKNOWN:
            if source < cfg.hard_negative_share and len(self.hard):
                return self.hard[int(pick * len(self.hard))]
            if source >= 1 - cfg.speech_share and len(self.speech) > SAMPLE_RATE:
                start = int(pick * (len(self.speech) - SAMPLE_RATE))
                return self.speech[start: start + SAMPLE_RATE]
        pool, own = self.class_indices[label], self.own_indices[label]
        if len(own) and len(pool):  # the user's clips: a fixed share of the draws, however few they are
            share = cfg.recording_share
            if pick < share:
                return self.train_waves[own[int(pick / share * len(own))]]
            pick = (pick - share) / (1 - share)
        elif len(own):
            pool = own
        return self.train_waves[pool[int(pick * len(pool))]] if len(pool) else None

    def _class_probabilities(self) -> np.ndarray:
        counts = np.array([len(i) + len(j) for i, j in zip(self.class_indices, self.own_indices)], dtype=np.float64)
        weights = np.where(counts > 0, counts ** self.cfg.balance, 0.0)
        fixed = {name: share for name, share in ((ds.SILENCE, self.cfg.silence_share),
                                                 (ds.UNKNOWN, self.cfg.unknown_share))
                 if name in self.names and share > 0}
        for name in fixed:
            weights[self.names.index(name)] = 0.0
        weights = weights / weights.sum() * (1 - sum(fixed.values()))
        for name, share in fixed.items():
            weights[self.names.index(name)] = share
        return weights / weights.sum()

    @property
    def steps_per_epoch(self) -> int:
        share = self.cfg.silence_share if ds.SILENCE in self.names else 0.0
        return max(1, math.ceil(len(self.train_labels) / (1 - share) / self.cfg.batch_size))

    def build_model(self) -> KeywordSpotter:
        model = initial_weights(build_model(self.cfg), self.cfg)
        model.frontend.set_noise(self.noise)
        return model

    def train_batch(self, step: int, rank: int, world: int):
        """Classes drawn with self.probs, a clip drawn within each class; _silence_ is cut from the noise
        recordings at a random gain. All from a generator seeded by (seed, step)."""
        rng = np.random.default_rng([self.cfg.seed, step])
        labels = rng.choice(len(self.names), size=self.cfg.batch_size, p=self.probs)
        picks = rng.random(self.cfg.batch_size)
        gains = rng.uniform(0, 1, self.cfg.batch_size)
        sources = rng.random(self.cfg.batch_size)
        mine = np.array_split(np.arange(self.cfg.batch_size), world)[rank]
        waves = torch.zeros(len(mine), SAMPLE_RATE)
        for row, i in enumerate(mine):
            clip = self.draw_clip(labels[i], picks[i], sources[i])
            if clip is not None:
                waves[row] = clip
            elif len(self.noise) > SAMPLE_RATE:  # _silence_
                start = int(picks[i] * (len(self.noise) - SAMPLE_RATE))
                waves[row] = self.noise[start: start + SAMPLE_RATE] * gains[i]
        return waves, torch.from_numpy(labels[mine])

    def to_device(self, batch, device):
        waves, labels = batch
        return waves.to(device, non_blocking=True), labels.to(device, non_blocking=True)

    def loss(self, model, batch):
        waves, labels = batch
        logits = model(waves)
        return F.cross_entropy(logits.float(), labels, label_smoothing=self.cfg.label_smoothing), len(labels)

    def evaluate(self, model, ctx: EvalContext) -> dict:
        report = score(model, self.val_waves, self.val_labels, self.names, ctx)
        return {k: report[k] for k in ("accuracy", "loss", "macro_f1")}

    def state(self) -> dict:
        return {"config": asdict(self.cfg), "labels": list(self.names)}


def make_task(cfg: KWSConfig):
    return StreamKWSTask(cfg) if cfg.streaming else KWSTask(cfg)


SLOT_SECONDS, MAX_OFFSET_SECONDS, TAIL_SECONDS = 1.5, 0.5, 0.5
LABEL_BEFORE_END_S, LABEL_AFTER_END_S = 0.1, 0.5  # a word's target steps: at least the decision layer's 500 ms window
IGNORE = -100


class StreamKWSTask(KWSTask):
    """Training for long audio: each example is a sequence of several 1.5 s slots, each holding a word (a
    keyword, another word) or nothing, over background noise at a random volume, with a target per encoder
    step: the word's class from 100 ms before its end to 500 ms after it, nothing (ignored) over the rest of
    the word, and _silence_ everywhere else. Never resetting within a sequence of several words, and seeing
    noise and silence between them, is what keeps the carried state healthy over an hour."""

    select_metric = "found_at_target"

    def __init__(self, cfg: KWSConfig):
        super().__init__(cfg)
        self.augmenter = FrontEnd(cfg.feature_config()).requires_grad_(False)  # never trained: builds no graph
        self.augmenter.set_noise(self.noise)
        self.statistics = self._feature_statistics()
        self.val_streams = validation_streams(self.names, self.val_waves, self.val_labels, self.noise,
                                              cfg.other_speech, cfg.seed, validation_negatives(cfg, self.names))
        self.calibration = None

    def evaluate(self, model, ctx: EvalContext) -> dict:
        figures = super().evaluate(model, ctx)
        spotter = Spotter(model, self.names, DecisionConfig(threshold=self.cfg.threshold))
        self.calibration = calibrate(evidence(spotter, self.val_streams))
        point = operating_point(self.calibration, self.cfg.select_fa_per_hour)
        return {**figures, "found_at_target": point["found_rate"], "validation_hours": self.calibration["hours"]}

    def state(self) -> dict:
        return {**super().state(), "calibration": self.calibration}

    def _feature_statistics(self, batches: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-band mean and std of the raw features of training sequences (fixed, causal normalisation)."""
        raw = []
        for i in range(batches):
            torch.manual_seed(self.cfg.seed + i)
            waves, _ = self.train_batch(10**9 + i, 0, 1)
            raw.append(self.augmenter.raw_features(waves))
        raw = torch.cat(raw)
        return raw.mean(dim=(0, 2)), raw.std(dim=(0, 2)).clamp_min(1e-3)

    def build_model(self) -> StreamingSpotter:
        model = build_model(self.cfg)
        model.frontend.mean.copy_(self.statistics[0])
        model.frontend.std.copy_(self.statistics[1])
        return initial_weights(model, self.cfg)  # a fine-tuned model keeps its statistics

    @property
    def steps_per_epoch(self) -> int:
        return max(1, math.ceil(super().steps_per_epoch / self.cfg.words_per_sequence))

    def train_batch(self, step: int, rank: int, world: int):
        """(waves (batch, samples), targets (batch, steps)): every draw from a generator seeded by (seed, step);
        augmentation of each word from torch's generator, which the trainer seeds per step."""
        cfg, slots = self.cfg, self.cfg.words_per_sequence
        rng = np.random.default_rng([cfg.seed, step])
        mine = np.array_split(np.arange(cfg.batch_size), world)[rank]
        labels = rng.choice(len(self.names), size=(cfg.batch_size, slots), p=self.probs)[mine]
        picks = rng.random((cfg.batch_size, slots))[mine]
        offsets = (rng.uniform(0, MAX_OFFSET_SECONDS, (cfg.batch_size, slots)) * SAMPLE_RATE).astype(int)[mine]
        volumes = rng.uniform(0, cfg.max_noise, cfg.batch_size)[mine]
        noise_at = rng.random(cfg.batch_size)[mine]
        sources = rng.random((cfg.batch_size, slots))[mine]
        speech_under = rng.random(cfg.batch_size)[mine] < cfg.speech_background
        speech_at, speech_gain = rng.random(cfg.batch_size)[mine], rng.uniform(0.05, 0.4, cfg.batch_size)[mine]
        clips = torch.zeros(len(mine) * slots, SAMPLE_RATE)
        for row, (label, pick, source) in enumerate(zip(labels.flat, picks.flat, sources.flat)):
            clip = self.draw_clip(label, pick, source)
            if clip is not None:  # _silence_ leaves the slot empty
                clips[row] = clip
        if cfg.augment:
            clips = self.augmenter.augment_wave(clips, noise=False)
        start, end = word_bounds(clips)
        slot = int(SLOT_SECONDS * SAMPLE_RATE)
        length = slots * slot + int(TAIL_SECONDS * SAMPLE_RATE)
        waves = torch.zeros(len(mine), length)
        at = torch.from_numpy(offsets.reshape(-1) + np.tile(np.arange(slots) * slot, len(mine)))
        rows = torch.arange(len(mine)).repeat_interleave(slots)
        waves.index_put_((rows[:, None], at[:, None] + torch.arange(SAMPLE_RATE)), clips, accumulate=True)
        if len(self.noise) > length:
            cut = torch.from_numpy((noise_at * (len(self.noise) - length)).astype(np.int64))
            waves += self.noise[cut[:, None] + torch.arange(length)] * torch.from_numpy(volumes).float()[:, None]
        if len(self.speech) > length:
            for row in np.flatnonzero(speech_under):  # running speech under the words: still not a keyword
                cut = int(speech_at[row] * (len(self.speech) - length))
                waves[row] += self.speech[cut: cut + length] * float(speech_gain[row])
        targets = self._targets(labels, at + start, at + end, length)
        return waves, targets

    def _targets(self, labels: np.ndarray, starts: torch.Tensor, ends: torch.Tensor, length: int) -> torch.Tensor:
        """The target of each encoder step from where each word starts and ends (in sequence samples)."""
        fe = self.augmenter
        k, batch = fe.cfg.frame_stack, labels.shape[0]
        steps = ((length - fe.n_fft) // fe.hop + 1) // k
        step_end = ((torch.arange(steps) + 1) * k - 1) * fe.hop + fe.n_fft  # the last sample each step reads
        silence = self.names.index(ds.SILENCE)
        targets = torch.full((batch, steps), silence, dtype=torch.long)
        words = torch.from_numpy(labels.reshape(-1))
        starts, ends = starts.view(batch, -1), ends.view(batch, -1)
        for j in range(labels.shape[1]):
            spoken = (words.view(batch, -1)[:, j] != silence)[:, None]
            first_label = ends[:, j, None] - int(LABEL_BEFORE_END_S * SAMPLE_RATE)
            inside = spoken & (step_end > starts[:, j, None]) & (step_end < first_label)
            labelled = spoken & (step_end >= first_label) & (step_end <= ends[:, j, None] + int(LABEL_AFTER_END_S * SAMPLE_RATE))
            targets[inside] = IGNORE
            targets = torch.where(labelled, words.view(batch, -1)[:, j, None], targets)
        return targets

    def loss(self, model, batch):
        waves, targets = batch
        if self.cfg.window:  # each step is a window read afresh: a few steps of each sequence teach as much
            count = min(self.cfg.window_steps, targets.shape[1])  # a short sequence: all its steps
            steps = torch.multinomial((targets != IGNORE).float() + 1e-6, count)
            targets = targets.gather(1, steps)
            logits = model(waves, spec_augment=self.cfg.augment, steps=steps)
        else:
            logits = model(waves, spec_augment=self.cfg.augment)
        steps = min(logits.shape[1], targets.shape[1])
        return F.cross_entropy(logits[:, :steps].float().flatten(0, 1), targets[:, :steps].flatten(),
                               ignore_index=IGNORE, label_smoothing=self.cfg.label_smoothing), len(waves) * self.cfg.words_per_sequence
