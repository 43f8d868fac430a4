"""The keyword spotter's commands: `train kws`, `evaluate kws`, `spot`, `listen`, `make-stream`."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ..cli import add_train_and_tune, prepare_run
from ..errors import UserError, positive
from ..onnx_export import register_exporter
from .flags import add_setting_flags


def register(groups, commands) -> None:
    add_train_and_tune(groups, "kws", "keyword spotter on Speech Commands", add_setting_flags, train_kws, tune_kws)
    register_exporter("kws", "seqapp.speech.listening.export:export_kws")

    ev = groups["evaluate"].add_parser("kws")
    ev.add_argument("--checkpoint", required=True)
    ev.add_argument("--data", help="Speech Commands folder or canonical test-set folder")
    ev.add_argument("--stream", help="a long recording to spot keywords in (a streaming model)")
    ev.add_argument("--labels", help="with --stream: its word,start_ms,end_ms CSV (as make-stream writes)")
    add_operating_point(ev, "with --stream: ")
    ev.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ev.add_argument("--json", action="store_true")
    ev.add_argument("--out", help="where to write confusion.png or the sweep PNG (default: beside the input)")
    ev.set_defaults(handler=evaluate_kws)

    spot_ = commands.add_parser("spot", help="label clips, or find keywords in a recording (--stream)")
    spot_.add_argument("--checkpoint", help="a checkpoint; with --stream also an exported spotter (.onnx: run "
                       "without PyTorch), and by default the listening spotter that ships with seqapp")
    spot_.add_argument("files", nargs="*", help="WAV/FLAC clips or folders of them")
    spot_.add_argument("--stream", help="a recording of any length, or - for standard input: detections as they happen")
    add_operating_point(spot_, "with --stream: ")
    spot_.add_argument("--top-k", type=int, default=3)
    spot_.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu")
    spot_.add_argument("--json", action="store_true", help="one JSON object (per detection with --stream)")
    spot_.set_defaults(handler=spot)

    mic = commands.add_parser("listen", help="find keywords in the microphone's audio (pip install seqapp[mic])")
    mic.add_argument("--checkpoint", help="a streaming checkpoint, or an exported spotter (.onnx: run without "
                     "PyTorch); default: the listening spotter that ships with seqapp")
    add_operating_point(mic, "", average=False)
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


def add_operating_point(parser, prefix: str, average: bool = True) -> None:
    parser.add_argument("--threshold", type=float, help=prefix + "the decision threshold (default: the model's)")
    if average:
        parser.add_argument("--average-ms", type=float, help=prefix + "the decision layer's averaging window (500)")
    parser.add_argument("--false-alarms-per-hour", type=float,
                        help=prefix + "the calibrated per-keyword thresholds for about this rate")


def tune_kws(args) -> None:
    from ..tune import run_tuning
    from .settings import KWSConfig
    from .training.tasks import KWSTask, make_task

    run_tuning(args, "kws", KWSConfig, KWSTask, lambda cfg, train_cfg: make_task(cfg))


def train_kws(args) -> None:
    from .settings import CUSTOM_PRESET, KWSConfig
    from .training.recipe import train

    given = vars(args)
    if "keywords" in given and "config" not in given and CUSTOM_PRESET.is_file():
        given["config"] = str(CUSTOM_PRESET)
    cfg, train_cfg, ckpt = prepare_run("kws", given, KWSConfig, args.resume)
    cfg.seed = train_cfg.seed
    cfg, made = train(cfg, train_cfg, ckpt, given, args.resume)
    if made is None:  # not rank 0
        return
    best = Path(train_cfg.out) / "best.pt"
    print(f"\ndone: {made}")
    print(f"score it: python evaluate.py kws --checkpoint {best} --data PATH/TO/speech_commands_test")
    if cfg.streaming:
        print(f"spot keywords in a recording: seqapp spot --checkpoint {best} --stream recording.wav")
    else:
        print(f"label clips: seqapp spot --checkpoint {best} clip.wav")


def evaluate_kws(args) -> None:
    from .training.evaluate import evaluate_clips, report_lines

    if args.stream:
        return evaluate_stream(args)
    if not args.data:
        raise UserError("evaluate kws needs --data (a test-set folder) or --stream RECORDING --labels CSV")
    result = evaluate_clips(args.checkpoint, args.data, args.device, args.out)
    print(json.dumps(result) if args.json else "\n".join(report_lines(result)))


def spot(args) -> None:
    if args.stream:
        if args.files:
            raise UserError("give either --stream SOURCE or clip files, not both")
        return spot_stream(args)
    if not args.files:
        raise UserError("spot needs clip files (or a folder), or --stream FILE|- for a continuous recording")
    if not args.checkpoint or args.checkpoint.endswith(".onnx"):
        raise UserError("spotting clips needs --checkpoint with a clip or streaming checkpoint (.pt)")
    from .data.audio import audio_files
    from .training.evaluate import label_clips

    positive("--top-k", args.top_k)
    results = label_clips(args.checkpoint, audio_files(args.files), args.top_k, args.device)
    if args.json:
        print(json.dumps(results))
        return
    for r in results:
        ranked = "  ".join(f"{t['label']} {t['p']:.3f}" for t in r["top"])
        print(f"{r['file']}\t{r['label']}\t{ranked}")


def print_detection(as_json: bool):
    def show(d) -> None:
        print(json.dumps(d.as_dict()) if as_json else f"{d.time:9.2f} s  {d.label:<6} {d.score:.3f}", flush=True)
    return show


def open_spotter_flags(args, average_ms=None):
    """The spotter the flags name: an exported one, the bundled one (no --checkpoint), or a checkpoint."""
    from .listening.run import open_spotter

    return open_spotter(args.checkpoint, args.threshold, average_ms, args.false_alarms_per_hour)


def spot_stream(args) -> None:
    from .data.sources import open_source
    from .listening.run import run_spotter

    run_spotter(open_spotter_flags(args, args.average_ms), open_source(args.stream), print_detection(args.json))


def listen(args) -> None:
    from .data.sources import microphone_blocks
    from .listening.run import run_spotter

    spotter = open_spotter_flags(args)
    device = int(args.input_device) if (args.input_device or "").isdigit() else args.input_device
    if spotter.note:
        print(spotter.note, file=sys.stderr)
    print("listening (Ctrl-C to stop) ...", file=sys.stderr)
    try:
        run_spotter(spotter, microphone_blocks(device=device), print_detection(args.json))
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)


def mine_command(args) -> None:
    from .training.mining import mine_checkpoint

    fired, minutes = mine_checkpoint(args.checkpoint, args.out, args.other_speech or "", args.noise or "",
                                     args.sentences, args.threshold, args.previous, args.seed, args.synth_cache)
    print(f"{fired} firings on {minutes:.1f} minutes of keyword-free audio; windows in {args.out}", file=sys.stderr)


def bundle_command(args) -> None:
    from .training.bundle import write_bundle

    out = write_bundle(args.stream, args.verifier, args.out, args.trigger, args.validation_negatives)
    print(f"{out}: streaming spotter + verifier")


def make_stream_command(args) -> None:
    from .data.dataset import KEYWORDS
    from .data.keywords import parse_keywords
    from .data.streams import build_stream, write_stream

    keywords = parse_keywords(args.keywords) if args.keywords else KEYWORDS
    wave, rows, what = build_stream(args.data, args.speech, args.minutes, args.seed, args.keyword_share,
                                    args.max_noise, args.noise, args.split, keywords)
    labels = write_stream(wave, rows, Path(args.out))
    print(f"{args.out}: {len(wave) / 16000 / 60:.1f} minutes, {what}; labels in {labels}")


def say(args) -> None:
    from .data.keywords import parse_keywords
    from .settings import custom_voice_draw
    from .voices.pronounce import look_alikes
    from .voices.synthetic import say as say_text

    positive("--voices", args.voices)
    if "," in args.text:
        raise UserError("say takes one keyword or phrase (no commas)")
    text = parse_keywords(args.text, "say")[0]
    for path, voice, phonemes in say_text(text, args.voices, args.seed, args.out, args.synth_cache,
                                          custom_voice_draw(args.synth_neural)):
        print(f"{path}  {voice}  [{phonemes}]")
    if args.look_alikes:
        print("look-alikes (negatives): " + (", ".join(look_alikes(text)) or "none found in the dictionary"))


def record_command(args) -> None:
    from .data.keywords import parse_keywords
    from .data.recordings import record

    word = parse_keywords(args.word, "--word")
    if len(word) != 1:
        raise UserError("record takes one --word at a time")
    device = int(args.input_device) if (args.input_device or "").isdigit() else args.input_device
    written = record(word[0], args.count, args.out, args.seconds, args.countdown, device)
    print(f"{len(written)} clips of {word[0]!r} in {written[0].parent}; train with --recordings {args.out}")


def evaluate_stream(args) -> None:
    from .listening.evaluate import evaluate_stream as run, report_lines

    result, point, seconds = run(args.checkpoint, args.stream, args.labels, args.threshold, args.average_ms,
                                 args.false_alarms_per_hour, args.out)
    print(json.dumps(result) if args.json else "\n".join(report_lines(result, point, seconds)))
