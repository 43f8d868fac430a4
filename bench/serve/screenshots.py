"""The screenshots in docs/: seqapp serve with real checkpoints in headless Chromium (Debian's, driven by
Playwright), the microphone fed a recording.

    python bench/serve/screenshots.py --lm runs/lm/best.pt --kws runs/custom/best.pt \
        --audio runs/custom_bench/wake_words.wav --seconds 20 --out docs"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from seqapp.serve.launch import running_server  # noqa: E402


def main() -> None:
    import soundfile as sf
    from playwright.sync_api import sync_playwright

    from seqapp.speech.data.sources import file_blocks

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lm", required=True)
    parser.add_argument("--kws", required=True)
    parser.add_argument("--audio", required=True)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--prompt", default="ROMEO:")
    parser.add_argument("--out", default="docs")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    clip = tmp / "mic.wav"
    sf.write(str(clip), np.concatenate(list(file_blocks(args.audio)))[: int(args.seconds * 16000)], 16000,
             subtype="PCM_16")
    out = Path(args.out)
    try:
        with running_server("--lm", args.lm, "--kws", args.kws) as port, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=[
                "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={clip}"])
            page = browser.new_page(viewport={"width": 1000, "height": 760})
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("body[data-ready='1']")
            page.click("#tab-write")
            page.fill("#prompt", args.prompt)
            page.fill("#length", "400")
            page.click("#generate")
            page.wait_for_selector("body[data-written='1']", timeout=60000)
            page.screenshot(path=str(out / "serve_write.png"))
            page.click("#tab-listen")
            page.click("#listen-start")
            page.wait_for_timeout(int(args.seconds * 1000) - 1500)
            page.screenshot(path=str(out / "serve_listen.png"))
            page.click("#listen-stop")
            page.click("#tab-file")
            page.set_input_files("#file-input", str(clip))
            page.wait_for_selector("body[data-filed='1']", timeout=60000)
            page.screenshot(path=str(out / "serve_file.png"))
            browser.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{out}/serve_write.png, serve_listen.png, serve_file.png")


if __name__ == "__main__":
    main()
