"""One plot for the custom-keyword benchmark: keywords missed in the real wake-word stream against false alarms
per hour over all the keyword-free streams together, for seqapp spotters (stream_curve.py's JSON), PocketSphinx
(pocketsphinx_streams.py's JSON) and openWakeWord (openwakeword_streams.py's JSON), on the same streams; it prints, for each spotter, the most
keywords found by a threshold with no false alarm, at most 0.5 and 1 an hour, and at most 1 and 3 in all the
keyword-free audio:

    python bench/speech/wake_word_curve.py --curve runs/custom_bench/curve.json --pocketsphinx runs/custom_bench/pocketsphinx.json \
        --free runs/streams/free30.wav --free runs/streams/speech_test.wav --out docs/custom_keywords/curve.png"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import soundfile as sf


def best_found(rows, rate, hours: float, alarms: float, per_hour: bool = False) -> str:
    """'found% (threshold, by word)': the best threshold with at most `alarms` false alarms in all the
    keyword-free audio, or at most `alarms` an hour when per_hour."""
    allowed = [(r["found_rate"], r["threshold"], i) for i, (r, fa) in enumerate(zip(rows, rate))
               if (fa <= alarms + 1e-9 if per_hour else round(fa * hours) <= alarms)]
    if not allowed:
        return f"{'none':>24}"
    found, threshold, i = max(allowed)
    words = "/".join(f"{f:.0%}" for f in rows[i].get("found_by_word", {}).values())
    return f"{found:6.1%} ({threshold:.2f}{', ' + words if words else ''})".rjust(24)


def print_best(name: str, rows, rate, hours: float) -> None:
    print(f"{name:>28}: " + " ".join([best_found(rows, rate, hours, 0), best_found(rows, rate, hours, 0.5, True),
                                      best_found(rows, rate, hours, 1, True), best_found(rows, rate, hours, 1),
                                      best_found(rows, rate, hours, 3)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--curve", action="append", default=[], help="stream_curve.py JSON (one or more spotters)")
    parser.add_argument("--pocketsphinx", action="append", default=[], help="pocketsphinx_streams.py JSON")
    parser.add_argument("--openwakeword", action="append", default=[], help="openwakeword_streams.py JSON")
    parser.add_argument("--free", action="append", required=True, help="the keyword-free streams the curves used")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hours = {Path(f).stem: sf.info(f).duration / 3600 for f in args.free}
    total = sum(hours.values())
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    columns = " ".join(f"{c:>24}" for c in ("none", "<= 0.5 an hour", "<= 1 an hour", "<= 1", "<= 3"))
    print(f"found, with these false alarms in {total:.2f} h: {columns}")
    for path in args.curve:
        for name, rows in json.loads(Path(path).read_text()).items():
            missing = [s for s in hours if f"false_alarms_per_hour_{s}" not in rows[0]]
            if missing:
                print(f"{name:>28}: not scored on {', '.join(missing)}: left out")
                continue
            rate = [sum(r[f"false_alarms_per_hour_{s}"] * h for s, h in hours.items()) / total for r in rows]
            print_best(name, rows, rate, total)
            ax.plot(rate, [1 - r["found_rate"] for r in rows], "o-", markersize=3, label=f"seqapp: {name}")
    points = sorted((r for p in args.pocketsphinx for r in json.loads(Path(p).read_text())),
                    key=lambda r: r["sensitivity"])
    if points:
        ax.plot([r["false_alarms_per_hour"] for r in points], [1 - r["found_rate"] for r in points], "s--",
                color="grey", label="PocketSphinx 5.1.1 (sensitivities " + ", ".join(f"{r['sensitivity']:g}" for r in points) + ")")
    for path in args.openwakeword:
        rows = json.loads(Path(path).read_text())
        rate = [sum(r[f"false_alarms_{s}"] for s in hours) / total for r in rows]
        print_best("openWakeWord 0.4.0", rows, rate, total)
        ax.plot(rate, [1 - r["found_rate"] for r in rows], "D--", color="tab:purple", markersize=3,
                label=f"openWakeWord 0.4.0, pretrained (thresholds {rows[0]['threshold']:g}-{rows[-1]['threshold']:g})")
    ax.axvline(0.5, color="grey", linestyle=":", lw=0.8)
    ax.axhline(0.1, color="tab:green", linestyle=":", lw=0.8, label="target from text: 90% found at 0.5 FA/h")
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlim(left=0)
    ax.set_ylim(0, 1)
    ax.set_xlabel(f"false alarms per hour\n({total:.2f} h of keyword-free audio: {', '.join(hours)})")
    ax.set_ylabel("real wake words missed")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(args.out)


if __name__ == "__main__":
    main()
