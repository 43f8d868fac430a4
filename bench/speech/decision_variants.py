"""Decision variants of a two-stage listening spotter on the same streams: which 1 s windows the verifier reads
and how their scores are combined, how long the streaming posteriors are averaged, the trigger. The posteriors
and the verifier's scores are computed once; each variant re-runs the decision layer (decision.detect) over
stream_curve.py's thresholds, which are chosen here on the test streams themselves (an upper bound).

    python bench/speech/decision_variants.py --model runs/kws_stream/best.pt --keywords runs/streams/test20.wav \
        --free runs/streams/free30.wav --free runs/streams/speech_test.wav

Also prints where keywords are lost: how many reach a score in the streaming model's average, and in the
verifier wherever it could be asked."""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from stream_curve import THRESHOLDS, read  # noqa: E402
from seqapp.speech.data.audio import SAMPLE_RATE  # noqa: E402
from seqapp.speech.data.streams import read_labels  # noqa: E402
from seqapp.speech.listening.decision import detect, smoothed  # noqa: E402
from seqapp.speech.listening.runtime import verify_windows  # noqa: E402
from seqapp.speech.listening.scoring import score_detections  # noqa: E402
from seqapp.speech.listening.spotter import VERIFY_ENDS_S, keyword_columns, load_spotter  # noqa: E402
from seqapp.speech.listening.stream import posteriors  # noqa: E402

ENDS_S = (0.0, 0.1, 0.2, 0.3, 0.4)   # the verifier's windows end this long before the step
REDUCE = {"max": np.max, "mean": np.mean, "min": np.min}
# name: (verifier window ends, how their scores combine, streaming average ms, trigger)
VARIANTS = {
    "as shipped": (VERIFY_ENDS_S, "max", None, None),
    "trigger 0.1": (VERIFY_ENDS_S, "max", None, 0.1),
    "windows ending 0 and 0.2 s before, mean": ((0.0, 0.2), "mean", None, None),
    "five windows (0-0.4 s before), max": (ENDS_S, "max", None, None),
    "five windows, mean": (ENDS_S, "mean", None, None),
    "five windows, min": (ENDS_S, "min", None, None),
    "streaming average 400 ms": (VERIFY_ENDS_S, "max", 400, None),
    "streaming average 320 ms": (VERIFY_ENDS_S, "max", 320, None),
    "streaming average 240 ms": (VERIFY_ENDS_S, "max", 240, None),
}


@torch.inference_mode()
def verifier_scores(spotter, audio: np.ndarray, times: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """(steps, len(ENDS_S), classes in spotter.names' order): the verifier on each window."""
    order = [spotter.verifier_names.index(n) for n in spotter.names]
    out = np.zeros((len(steps), len(ENDS_S), len(order)), np.float32)
    for b in range(0, len(steps), 64):
        ends = [int(round(times[i] * SAMPLE_RATE)) for i in steps[b: b + 64]]
        windows = torch.from_numpy(verify_windows(audio, ends, ENDS_S, SAMPLE_RATE))
        probs = torch.softmax(spotter.verifier(windows).float(), -1).numpy()[:, order]
        out[b: b + len(ends)] = probs.reshape(len(ends), len(ENDS_S), -1)
    return out


def prepare(spotter, path: str) -> dict:
    """A stream's posteriors, and the verifier's scores at every step some variant could ask about."""
    audio, truth = read(path), read_labels(Path(path).with_suffix(".csv"))
    times, probs = posteriors(spotter.model, torch.from_numpy(audio))
    keywords = probs[:, keyword_columns(spotter.names)]
    asked = (smoothed(keywords, 3)[0].max(1) >= 0.1) | (smoothed(keywords, 6)[0].max(1) >= 0.1)
    steps = np.flatnonzero(asked)
    print(f"{Path(path).name}: the verifier on {len(steps)} steps x {len(ENDS_S)} windows", flush=True)
    return {"audio": audio, "truth": truth, "times": times, "probs": probs,
            "row": {round(float(times[i]), 6): j for j, i in enumerate(steps)},
            "scores": verifier_scores(spotter, audio, times, steps)}


def detections(spotter, stream: dict, variant: tuple, threshold: float):
    ends, how, average_ms, trigger = variant
    cols = [ENDS_S.index(e) for e in ends]

    def verify(time: float, label: int) -> float:
        return float(REDUCE[how](stream["scores"][stream["row"][round(time, 6)], cols, label]))
    cfg = replace(spotter.decision, threshold=float(threshold), thresholds=None,
                  average_ms=average_ms or spotter.decision.average_ms, trigger=trigger or spotter.decision.trigger)
    return detect(stream["times"], stream["probs"], spotter.names, cfg, spotter.model.step_seconds, verify)


def best_points(spotter, streams: dict, keywords: str, free: list[str], variant: tuple) -> dict:
    words = [spotter.names[i] for i in keyword_columns(spotter.names)]
    rows = []
    for threshold in THRESHOLDS:
        score = {p: score_detections(detections(spotter, s, variant, threshold), s["truth"],
                                     len(s["audio"]) / SAMPLE_RATE, words) for p, s in streams.items()}
        rows.append((score[keywords]["found_rate"], threshold, [score[p]["false_alarms_per_hour"] for p in free]))

    def best(ok):
        return max(((found, t) for found, t, fa in rows if ok(fa)), default=(0.0, None))
    return {"none": best(lambda fa: max(fa) == 0), "2 on the first, none on the others":
            best(lambda fa: fa[0] <= 2 and max(fa[1:], default=0) == 0)}


def where_lost(spotter, stream: dict) -> None:
    """Of the keywords spoken, how many reach each score: the streaming average, the verifier where asked."""
    cols, names = keyword_columns(spotter.names), spotter.names
    window = max(1, round(spotter.decision.average_ms / 1000 / spotter.model.step_seconds))
    average = smoothed(stream["probs"][:, cols], window)[0]
    times, best_avg, best_ver = stream["times"], [], []
    for word, start, end in stream["truth"]:
        if word not in names or names.index(word) not in cols:
            continue
        k, near = cols.index(names.index(word)), np.flatnonzero((times >= start - 0.5) & (times <= end + 0.75))
        best_avg.append(average[near, k].max(initial=0))
        rows = [stream["row"][round(float(times[i]), 6)] for i in near if round(float(times[i]), 6) in stream["row"]]
        best_ver.append(stream["scores"][rows][:, [ENDS_S.index(e) for e in VERIFY_ENDS_S], names.index(word)]
                        .max(initial=0) if rows else 0)
    print(f"\nwhere keywords are lost ({len(best_avg)} spoken): the share whose best score in the word's window "
          "reaches each value")
    for t in (0.5, 0.7, 0.8, 0.9, 0.95):
        print(f"  {t:.2f}: streaming average {np.mean(np.array(best_avg) >= t):6.1%}   "
              f"verifier {np.mean(np.array(best_ver) >= t):6.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a two-stage bundle (best.pt of the listening preset)")
    parser.add_argument("--keywords", required=True)
    parser.add_argument("--free", action="append", required=True, help="a keyword-free stream (repeatable)")
    args = parser.parse_args()
    spotter = load_spotter(args.model)
    if spotter.verifier is None:
        sys.exit(f"{args.model} has no verifier: these variants are of the second stage")
    streams = {p: prepare(spotter, p) for p in [args.keywords, *args.free]}
    print(f"\n{'variant':42s} {'none':>14s} {'<= 2 / 0':>14s}   (found in {Path(args.keywords).name} @ threshold)")
    for name, variant in VARIANTS.items():
        points = best_points(spotter, streams, args.keywords, args.free, variant)
        print(f"{name:42s} " + " ".join(f"{found:7.1%} @{t or 0:5.3f}" for found, t in points.values()), flush=True)
    where_lost(spotter, streams[args.keywords])


if __name__ == "__main__":
    main()
