"""PocketSphinx beside seqapp on the same streams, run as Picovoice's wake-word benchmark runs it (its engine.py:
one decoder per keyword in keyphrase search, kws_threshold = 10^-sensitivity, 512-sample frames, the utterance
restarted after each detection), scored by seqapp's own stream scorer:

    pip install 'seqapp[bench]'
    python bench/speech/pocketsphinx_streams.py --keywords "computer,jarvis,smart mirror" \
        --stream runs/custom_bench/wake_words.wav --free runs/streams/free30.wav --free runs/streams/speech_test.wav

For each sensitivity: the share of keywords found in the labelled stream, and false alarms per hour over the
keyword-free streams (every detection there is one)."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from seqapp.speech.listening.decision import Detection  # noqa: E402
from seqapp.speech.data.streams import read_labels  # noqa: E402
from seqapp.speech.data.sources import file_blocks  # noqa: E402
from seqapp.speech.listening.scoring import score_detections  # noqa: E402

FRAME = 512
SENSITIVITIES = (10, 20, 30, 40, 50)


def detections(keyword: str, pcm: np.ndarray, sensitivity: float) -> list[Detection]:
    from pocketsphinx import Decoder

    decoder = Decoder(keyphrase=keyword, kws_threshold=10.0 ** -sensitivity, logfn="/dev/null")
    decoder.start_utt()
    found = []
    for i in range(0, len(pcm) - FRAME + 1, FRAME):
        decoder.process_raw(pcm[i: i + FRAME].tobytes(), False, False)
        if decoder.hyp() is not None:
            found.append(Detection(keyword, (i + FRAME) / 16000, 1.0))
            decoder.end_utt()
            decoder.start_utt()
    decoder.end_utt()
    return found


def peer_row(setting: str, value: float, score: dict, alarms: list[int], free: list[str], free_hours: float) -> dict:
    """One operating point of a peer, printed as it is made: what seqapp's scorer found in the labelled stream
    (`score`), and the false alarms on each keyword-free stream."""
    row = {setting: value, "found_rate": score["found_rate"], "found": score["found"], "keywords": score["keywords"],
           "stream_false_alarms": score["false_alarms"], "free_false_alarms": sum(alarms),
           "false_alarms_per_hour": sum(alarms) / free_hours,
           **{f"false_alarms_{Path(p).stem}": a for p, a in zip(free, alarms)},
           "latency_median_s": score["latency_median_s"], "per_keyword": score.get("per_keyword")}
    print(f"{setting} {value:g}: found {row['found']}/{row['keywords']} ({row['found_rate']:.1%}), "
          f"{sum(alarms)} false alarms in {free_hours:.2f} h ({row['false_alarms_per_hour']:.1f}/hour)", flush=True)
    return row


def read_pcm(path: str) -> np.ndarray:
    wave = np.concatenate(list(file_blocks(path)))
    return (np.clip(wave, -1, 1) * 32767).astype(np.int16)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keywords", required=True)
    parser.add_argument("--stream", required=True, help="a labelled stream of the keywords (its .csv beside it)")
    parser.add_argument("--free", action="append", default=[], help="a keyword-free stream (repeatable)")
    parser.add_argument("--sensitivity", type=float, action="append", help=f"default {SENSITIVITIES}")
    parser.add_argument("--json")
    args = parser.parse_args()
    keywords = [k.strip() for k in args.keywords.split(",")]
    stream, truth = read_pcm(args.stream), read_labels(Path(args.stream).with_suffix(".csv"))
    free = [read_pcm(f) for f in args.free]
    free_hours = sum(len(f) for f in free) / 16000 / 3600
    rows, started, audio = [], time.perf_counter(), 0.0
    for s in args.sensitivity or SENSITIVITIES:
        found = [d for k in keywords for d in detections(k, stream, s)]
        alarms = [sum(len(detections(k, f, s)) for k in keywords) for f in free]
        audio += len(keywords) * (len(stream) + sum(len(f) for f in free)) / 16000
        rows.append(peer_row("sensitivity", s, score_detections(found, truth, len(stream) / 16000, keywords), alarms,
                             args.free, free_hours))
    print(f"real-time factor {(time.perf_counter() - started) / audio:.4f} per keyword decoder")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
