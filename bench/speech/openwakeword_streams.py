"""openWakeWord 0.4.0's pretrained `alexa` beside seqapp, on the same streams, scored by seqapp's own stream
scorer. openWakeWord runs as its README runs it: 1280-sample frames of int16 audio into Model.predict, one score
per 80 ms. A detection is a score at or above the threshold, then quiet for 1.5 s (seqapp's suppression time).
Its pretrained models are CC BY-NC-SA 4.0: a peer in this benchmark only, never inside seqapp or its training.

    pip install 'seqapp[peer]'      # openwakeword==0.4.0
    python bench/speech/openwakeword_streams.py --model alexa --keyword alexa --stream runs/alexa_bench/wake_words.wav \
        --free runs/streams/free30.wav --free runs/streams/speech_test.wav --json runs/alexa_bench/openwakeword.json

For each threshold: the share of keywords found in the labelled stream, and the false alarms per hour on the
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
from seqapp.speech.listening.scoring import score_detections  # noqa: E402
from pocketsphinx_streams import peer_row, read_pcm  # noqa: E402  (bench/: beside this file)

FRAME = 1280
SUPPRESSION_S = 1.5
THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)


def scores(model_name: str, pcm: np.ndarray) -> np.ndarray:
    """openWakeWord's score for every 80 ms frame of the recording (a fresh model per recording)."""
    import openwakeword
    from openwakeword.model import Model

    path = [p for p in openwakeword.get_pretrained_model_paths() if Path(p).name.startswith(model_name + "_")]
    if not path:
        sys.exit(f"openwakeword has no pretrained model named {model_name!r}")
    model = Model(wakeword_model_paths=path)
    name = list(model.models)[0]
    return np.array([model.predict(pcm[i: i + FRAME])[name] for i in range(0, len(pcm) - FRAME + 1, FRAME)])


def detections(keyword: str, frame_scores: np.ndarray, threshold: float) -> list[Detection]:
    found, quiet_until = [], -np.inf
    for i, s in enumerate(frame_scores):
        time_s = (i + 1) * FRAME / 16000
        if s >= threshold and time_s >= quiet_until:
            found.append(Detection(keyword, time_s, float(s)))
            quiet_until = time_s + SUPPRESSION_S
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="alexa", help="an openWakeWord pretrained model's name")
    parser.add_argument("--keyword", default="alexa", help="the keyword its detections count as")
    parser.add_argument("--stream", required=True, help="a labelled stream of the keyword (its .csv beside it)")
    parser.add_argument("--free", action="append", default=[], help="a keyword-free stream (repeatable)")
    parser.add_argument("--json")
    args = parser.parse_args()
    started = time.perf_counter()
    stream, truth = read_pcm(args.stream), read_labels(Path(args.stream).with_suffix(".csv"))
    free = [read_pcm(f) for f in args.free]
    stream_scores, free_scores = scores(args.model, stream), [scores(args.model, f) for f in free]
    seconds = (len(stream) + sum(len(f) for f in free)) / 16000
    free_hours = sum(len(f) for f in free) / 16000 / 3600
    rows = []
    for t in THRESHOLDS:
        score = score_detections(detections(args.keyword, stream_scores, t), truth, len(stream) / 16000,
                                 [args.keyword])
        alarms = [len(detections(args.keyword, s, t)) for s in free_scores]
        rows.append(peer_row("threshold", t, score, alarms, args.free, free_hours))
    print(f"real-time factor {(time.perf_counter() - started) / seconds:.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
