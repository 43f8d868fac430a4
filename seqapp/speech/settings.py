"""The keyword spotter's settings (configs/kws_*.json are these, as data), and the model they build."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import Settings, read_json_object
from ..errors import UserError, positive
from .data import dataset as ds
from .data.keywords import class_names as keyword_classes, parse_keywords
from .models.features import FeatureConfig
from .models.spotters import KeywordSpotter, KWSModelConfig, StreamingSpotter
from .voices.synthesize import ESPEAK_ACCENTS, FASTEST, VoiceDraw

CUSTOM_PRESET = Path(__file__).resolve().parents[2] / "configs" / "kws_custom.json"  # train kws --keywords


@dataclass
class KWSConfig(Settings):
    data: str = "data/speech_commands"
    classes: int = 12
    keywords: str = ""            # your own words ("computer,smart mirror"): classes are these, _silence_, _unknown_
    recordings: str = ""          # a folder of your own clips of them (one folder per keyword: seqapp record)
    recording_share: float = 0.25  # the share of a keyword's draws that are its recordings (10 clips count)
    validation_voices: int = 60   # custom keywords: synthetic voices per keyword held out for validation
    features: str = "logmel"
    tune_embedding: int = 0       # embedding: fine-tune its last this many blocks with the head (0: frozen)
    n_mels: int = 40
    cell: str = "gru"
    layers: int = 2
    hidden: int = 128
    params: int = 0               # when set, --hidden is chosen to give the model about this many parameters
    forget_bias: float = 0.0
    dropout: float = 0.1
    bidirectional: bool = True
    pooling: str = "attention"
    batch_size: int = 64
    epochs: float | None = None  # when set, the training length in passes over the training clips
    balance: float = 0.5          # class c is drawn with weight count_c ** balance: 1 as found, 0 uniform
    silence_share: float = 0.1    # share of each batch that is _silence_ (12 classes)
    unknown_share: float = 0.0    # share of _unknown_ (other words); 0: by the balance rule like the keywords
    label_smoothing: float = 0.1
    augment: bool = True
    speed: float = 0.15
    eq_db: float = 0.0            # streaming: a random equaliser of up to this many dB (a microphone's response)
    noise_prob: float = 0.8
    skip_bad_files: bool = False
    seed: int = 1337
    # streaming: a unidirectional model with a posterior per 20 ms, trained on sequences of several words
    streaming: bool = False
    window: int = 0               # streaming: each step reads the last N steps afresh (bidirectional, pooled)
    window_steps: int = 16        # streaming with a window: steps of each training sequence in the loss
    words_per_sequence: int = 4   # slots of 1.5 s, each a word (or nothing: _silence_), over noise
    max_noise: float = 0.3        # the noise added to a training sequence has a volume drawn from [0, this]
    threshold: float = 0.7        # the decision layer's threshold, stored with the model (spot --threshold)
    # negatives and positives beyond Speech Commands
    other_speech: str = ""        # a folder of other speech (librispeech/, wake_words/, digits/): its training split
    speech_share: float = 0.0     # share of _unknown_ draws that are 1 s cuts of running speech (needs other_speech)
    speech_background: float = 0.0  # streaming: chance that running speech plays under a whole training sequence
    synth_positives: int = 0      # synthetic voices per keyword, added to its clips
    synth_negatives: int = 0      # synthetic other words, look-alikes and phrases, added to _unknown_
    synth_cache: str = "data/synth_cache"
    synth_rooms: float = 0.0      # share of the synthetic clips heard in a simulated room (reverberation)
    synth_accents: str = ""       # espeak-ng accents of the synthetic positives, comma-separated (default: all 8)
    synth_rate_max: float = FASTEST  # synthetic voices speak at 0.7 to this many times the synthesizer's default rate
    synth_neural: float = 0.0     # share of the synthetic voices that are the neural one (Piper's joe), any accent
    look_alike_share: float = 1 / 3  # share of the synthetic negatives that are look-alikes of the keywords
    hard_negatives: str = ""      # mined windows (a .pt file of clips, see mining.py), drawn as _unknown_ ...
    hard_negative_share: float = 0.0  # ... for this share of the _unknown_ draws
    select_fa_per_hour: float = 2.0  # streaming: best.pt is the checkpoint that finds most at this rate
    validation_negatives: int = 0  # streaming: held-out synthetic other words in the validation streams
    init_from: str = ""           # start from this checkpoint's weights (a mining round fine-tunes the last)
    # the listening spotter's recipe (recipe.py): mining rounds, then a clip verifier, bundled as best.pt
    mining_rounds: int = 0
    mining_steps: int = 500       # fine-tuning steps per round, at lr x mining_lr_ratio
    mining_lr_ratio: float = 0.3
    mining_threshold: float = 0.3  # firings at this averaged posterior are mined
    mining_sentences: int = 300   # synthesized keyword-free sentences mined besides other speech and noise
    verifier: str = ""            # a clip preset (configs/kws_verifier.json) trained as the second stage
    trigger: float = 0.3          # the streaming score that asks the verifier

    def names(self) -> list[str]:
        """The class list: --keywords with _silence_ and _unknown_, or Speech Commands' 12 or 35 classes."""
        return keyword_classes(parse_keywords(self.keywords)) if self.keywords else ds.class_names(self.classes)

    def check(self) -> "KWSConfig":
        for name in ("layers", "hidden", "batch_size", "n_mels"):
            positive(f"--{name.replace('_', '-')}", getattr(self, name))
        if not (0 <= self.silence_share < 1 and 0 <= self.unknown_share < 1 and self.silence_share + self.unknown_share < 1):
            raise UserError("silence_share and unknown_share must be in [0, 1) and add up to less than 1")
        positive("--epochs", self.epochs)
        for name in ("speech_share", "speech_background", "hard_negative_share", "synth_rooms", "look_alike_share",
                     "synth_neural"):
            if not 0 <= getattr(self, name) <= 1:
                raise UserError(f"--{name.replace('_', '-')} must be in [0, 1], got {getattr(self, name)}")
        if (self.speech_share or self.speech_background) and not self.other_speech:
            raise UserError("--speech-share and --speech-background need --other-speech FOLDER (running speech)")
        if self.hard_negative_share and not self.hard_negatives:
            raise UserError("--hard-negative-share needs --hard-negatives FILE (mined windows)")
        positive("--synth-positives", self.synth_positives, allow_zero=True)
        positive("--validation-voices", self.validation_voices)
        accents_of(self.synth_accents)
        if not 0 <= self.eq_db <= 20:
            raise UserError(f"--eq-db must be in [0, 20], got {self.eq_db}")
        if not 0.7 < self.synth_rate_max <= 3:
            raise UserError(f"--synth-rate-max must be in (0.7, 3], got {self.synth_rate_max}")
        positive("--synth-negatives", self.synth_negatives, allow_zero=True)
        positive("--validation-negatives", self.validation_negatives, allow_zero=True)
        names = self.names()
        if not 0 <= self.recording_share < 1:
            raise UserError(f"--recording-share must be in [0, 1), got {self.recording_share}")
        if self.keywords and not (self.synth_positives or self.recordings):
            raise UserError("--keywords needs positives: --synth-positives N (synthetic speech) and/or "
                            "--recordings DIR (your own clips)")
        positive("--window", self.window, allow_zero=True)
        if self.window and not self.streaming:
            raise UserError("--window is for a streaming spotter (--streaming): a clip model reads the whole clip")
        if self.streaming:
            positive("--words-per-sequence", self.words_per_sequence)
            positive("--window-steps", self.window_steps)
            if ds.SILENCE not in names or ds.UNKNOWN not in names:
                raise UserError("a streaming spotter needs the 12-class task (_silence_ and _unknown_ between words)")
        return self


    def model_config(self) -> KWSModelConfig:
        window = self.window if self.streaming else 0  # a window head may read both ways: it reads a fixed span
        return KWSModelConfig(len(self.names()), self.cell, self.layers, self.hidden, self.dropout,
                              self.bidirectional and (window > 0 or not self.streaming), self.pooling,
                              self.forget_bias, window)

    def feature_config(self) -> FeatureConfig:
        cfg = FeatureConfig(features=self.features, tune_embedding=self.tune_embedding, n_mels=self.n_mels,
                            speed=self.speed, noise_prob=self.noise_prob, eq_db=self.eq_db)
        if self.streaming:
            cfg.center, cfg.normalize = False, "fixed"
        if self.features == "embedding":  # one vector per encoder step; no SpecAugment on a learned embedding
            cfg.frame_stack, cfg.freq_masks, cfg.time_masks = 1, 0, 0
        if not self.augment:
            cfg.speed = cfg.shift_ms = cfg.gain_db = cfg.noise_prob = cfg.eq_db = 0.0
            cfg.freq_masks = cfg.time_masks = 0
        return cfg


def build_model(cfg: KWSConfig) -> KeywordSpotter | StreamingSpotter:
    model_class = StreamingSpotter if cfg.streaming else KeywordSpotter
    return model_class(cfg.model_config(), cfg.feature_config())


def model_from_checkpoint(ckpt: dict) -> tuple[KeywordSpotter | StreamingSpotter, list[str]]:
    cfg = KWSConfig.from_dict(ckpt["task_state"]["config"])
    model = build_model(cfg)
    model.load_state_dict(ckpt["model"])
    return model.eval(), list(ckpt["task_state"]["labels"])


def accents_of(text: str) -> tuple[str, ...]:
    accents = tuple(a.strip() for a in text.split(",") if a.strip()) or ESPEAK_ACCENTS
    unknown = [a for a in accents if a not in ESPEAK_ACCENTS]
    if unknown:
        raise UserError(f"--synth-accents: unknown accent {unknown[0]!r} (choose from {', '.join(ESPEAK_ACCENTS)})")
    return accents


def voice_draw(cfg: KWSConfig, negatives: bool = False):
    """The synthetic voices of cfg; negatives are spoken in every accent whatever --synth-accents says."""
    return VoiceDraw(ESPEAK_ACCENTS if negatives else accents_of(cfg.synth_accents), cfg.synth_rate_max,
                     cfg.synth_neural)


def custom_voice_draw(neural: float | None = None) -> VoiceDraw:
    """The voices `train kws --keywords` draws (configs/kws_custom.json), with another neural share if given."""
    values = read_json_object(CUSTOM_PRESET, "custom preset") if CUSTOM_PRESET.is_file() else {}
    if neural is not None:
        values["synth_neural"] = neural
    return voice_draw(KWSConfig.from_dict(values).check())
