"""What a custom spotter is scored on, from real recordings no spotter trains on (the Picovoice benchmark's wake
words in other_speech/wake_words/): for each keyword, its first 20 clips (by name) set aside as --recordings
folders of 5, 10 and 20 (OUT/rec5/WORD/...), and the rest placed one per 3 s slot over held-out noise
(OUT/wake_words.wav and .csv, as make-stream builds streams):

    python bench/speech/wake_word_streams.py --keywords "computer,jarvis,smart mirror" \
        --wake-words ../shared/data/other_speech/wake_words --noise ../shared/data/speech_commands/_background_noise_ \
        --out runs/custom_bench

Every spotter compared is scored on the same stream; false alarms come from the keyword-free streams."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from seqapp.speech.data.keywords import folder_name, parse_keywords  # noqa: E402
from seqapp.speech.data.streams import make_stream, write_stream  # noqa: E402

SET_ASIDE = (5, 10, 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keywords", required=True)
    parser.add_argument("--wake-words", required=True, help="a folder with one folder of clips per keyword")
    parser.add_argument("--noise", required=True, help="a background-noise folder (its held-out part is used)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    keywords, out = parse_keywords(args.keywords), Path(args.out)
    rest = out / "scored_clips"
    for word in keywords:
        clips = sorted((Path(args.wake_words) / folder_name(word)).glob("*.*"))
        if len(clips) <= max(SET_ASIDE):
            sys.exit(f"{args.wake_words}/{folder_name(word)}: {len(clips)} clips, need more than {max(SET_ASIDE)}")
        for n in SET_ASIDE:
            link_all(clips[:n], out / f"rec{n}" / folder_name(word))
        link_all(clips[max(SET_ASIDE):], rest / folder_name(word))
    count = sum(len(list((rest / folder_name(w)).iterdir())) for w in keywords)
    wave, rows = make_stream(rest, count * 3 / 60, args.seed, keyword_share=1.0, noise=args.noise, split="all",
                             keywords=keywords)
    labels = write_stream(wave, rows, out / "wake_words.wav")
    print(f"{out / 'wake_words.wav'}: {len(wave) / 16000 / 60:.1f} min, {len(rows)} keywords from {count} real clips; "
          f"labels in {labels}; recordings in {', '.join(str(out / f'rec{n}') for n in SET_ASIDE)}")


def link_all(paths: list[Path], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for p in paths:
        link = folder / p.name
        if not link.exists():
            link.symlink_to(p.resolve())


if __name__ == "__main__":
    main()
