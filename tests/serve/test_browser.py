"""seqapp serve in a real browser: headless Chromium (Debian's, driven by Playwright) with its microphone fed a
recording. The page writes the text `seqapp generate` gives for the seed, shows the detections the CLI finds on
the samples the server received, and shows a bad upload's error. `make test` installs chromium when missing.
With SEQAPP_SCREENSHOTS=DIR the views are saved there as PNG (docs/serve_*.png come from this test)."""
import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import run_main
from seqapp.serve.launch import running_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make test installs it)")
THRESHOLD = "0.1"  # low: a spotter of 40 steps on tones fires at all


@pytest.fixture(scope="module")
def server(served, tmp_path_factory):
    keep = tmp_path_factory.mktemp("heard")
    with running_server("--lm", str(served.lm), "--kws", str(served.kws), "--threshold", THRESHOLD,
                        "--keep-audio", str(keep)) as port:
        yield f"http://127.0.0.1:{port}/", keep


@pytest.fixture(scope="module")
def page(server, served):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={served.wav}", "--autoplay-policy=no-user-gesture-required"])
        page = browser.new_page(viewport={"width": 1000, "height": 800})
        page.goto(server[0])
        page.wait_for_selector("body[data-ready='1']", timeout=20000)
        yield page
        browser.close()


def screenshot(page, name: str) -> None:
    folder = os.environ.get("SEQAPP_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"serve_{name}.png"), full_page=True)


def rows(page, table: str) -> list[tuple[str, str, str]]:
    return [tuple(td.inner_text() for td in tr.query_selector_all("td"))
            for tr in page.query_selector_all(f"#{table} tbody tr")]


def as_rows(detections: list[dict]) -> list[tuple[str, str, str]]:
    return [(f"{d['time']:.2f}", d["label"], f"{d['score']:.3f}") for d in detections]


def test_a_prompt_typed_into_the_page_gives_seqapp_generates_text(page, served):
    page.click("#tab-write")
    page.fill("#prompt", "First")
    page.fill("#length", "80")
    page.fill("#temperature", "0.9")
    page.fill("#top-k", "20")
    page.fill("#seed", "7")
    page.click("#generate")
    page.wait_for_selector("body[data-written='1']", timeout=30000)
    cli = run_main("generate", "--checkpoint", served.lm, "--prompt", "First", "--length", "80", "--temperature",
                   "0.9", "--top-k", "20", "--seed", "7")
    assert page.inner_text("#output") == cli.stdout.rstrip("\n")
    assert "chars/s" in page.inner_text("#write-rate")
    screenshot(page, "write")


def test_the_microphone_page_shows_what_the_cli_finds_on_the_samples_the_server_heard(page, server, served):
    keep = server[1]
    page.click("#tab-listen")
    page.click("#listen-start")
    page.wait_for_selector("text=listening", timeout=10000)
    page.wait_for_timeout(12000)                      # the fake microphone plays the recording in real time
    screenshot(page, "listen")
    page.click("#listen-stop")
    page.wait_for_selector("body[data-listened='1']", timeout=30000)
    heard = sorted(keep.glob("*.wav"))
    assert len(heard) == 1
    spot = run_main("spot", "--checkpoint", served.kws, "--stream", heard[0], "--threshold", THRESHOLD, "--json")
    assert spot.returncode == 0, spot.stderr
    cli = as_rows([json.loads(line) for line in spot.stdout.splitlines()])
    assert cli and rows(page, "detections") == cli
    assert "real time" in page.inner_text("#listen-status")


def test_a_dropped_file_shows_its_detections_and_a_bad_one_its_error(page, served, tmp_path):
    page.click("#tab-file")
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF1234WAVEjunk" * 8)
    page.set_input_files("#file-input", str(bad))
    page.wait_for_selector("body[data-filed='error']", timeout=20000)
    error = page.inner_text("#file-error")
    assert "broken.wav" in error and "\n" not in error
    page.set_input_files("#file-input", str(served.wav))
    page.wait_for_selector("body[data-filed='1']", timeout=30000)
    spot = run_main("spot", "--checkpoint", served.kws, "--stream", served.wav, "--threshold", THRESHOLD, "--json")
    assert rows(page, "file-detections") == as_rows([json.loads(line) for line in spot.stdout.splitlines()])
    assert page.is_visible("#file-json")
    screenshot(page, "file")


def test_clips_recorded_on_the_page_download_as_a_zip_recordings_reads(page, tmp_path):
    import zipfile

    from seqapp.speech.data import recordings

    page.click("#tab-record")
    page.fill("#record-word", "Smart Mirror")
    page.fill("#record-count", "2")
    page.click("#record-start")
    page.wait_for_selector("#clips li:nth-child(2)", timeout=20000)
    with page.expect_download() as download:
        page.click("#record-zip")
    archive = tmp_path / download.value.suggested_filename
    download.value.save_as(archive)
    with zipfile.ZipFile(archive) as z:
        assert z.namelist() == ["smart_mirror/smart_mirror_001.wav", "smart_mirror/smart_mirror_002.wav"]
        z.extractall(tmp_path / "clips")
    clips, which = recordings.load(tmp_path / "clips", ["computer", "smart mirror"])
    assert clips.shape == (2, 16000) and list(which) == [1, 1]
