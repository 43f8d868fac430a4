import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
TEXT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
        "First Citizen:\nYou are all resolved rather to die than to famish?\n\n") * 40


def run_cli(*args, cwd=None, timeout=300, env=None):
    """Run the real command line (python -m seqapp ...) and return the completed process."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, *args], cwd=cwd or ROOT, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


def run_main(*args):
    """The CLI's own entry point, in this process (no interpreter start-up): for the many bad-input checks.
    Returns what run_cli returns: returncode, stdout, stderr."""
    import contextlib
    import io
    import types

    from seqapp.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return types.SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


def assert_one_line_error(proc, *fragments):
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("seqapp: error:")]
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def text_file(tmp_path) -> Path:
    path = tmp_path / "tiny.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def tone(freq: float, seconds: float = 1.0, rate: int = 16000, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


WORD_TONES = {"yes": 300, "no": 500, "up": 700, "down": 900, "left": 1100, "right": 1300, "on": 1500,
              "off": 1700, "stop": 1900, "go": 2100, "bed": 2500, "cat": 2900}


def make_speech_commands(root: Path, per_word: int = 6, with_lists: bool = False) -> Path:
    """A tiny Speech Commands folder: each word a tone of its own pitch, WAV and FLAC, some clips short."""
    rng = np.random.default_rng(0)
    for w, freq in WORD_TONES.items():
        (root / w).mkdir(parents=True)
        for i in range(per_word):
            speaker = f"{rng.integers(0, 2**32):08x}"
            wave = tone(freq * (1 + 0.02 * rng.standard_normal()), seconds=rng.choice([0.8, 1.0]))
            wave += 0.01 * rng.standard_normal(len(wave)).astype(np.float32)
            suffix = ".flac" if i % 2 else ".wav"
            sf.write(root / w / f"{speaker}_nohash_0{suffix}", wave, 16000, subtype="PCM_16")
    (root / "_background_noise_").mkdir()
    sf.write(root / "_background_noise_" / "white_noise.wav",
             (0.1 * rng.standard_normal(16000 * 5)).astype(np.float32), 16000)
    if with_lists:
        val = [f"{w}/{sorted((root / w).iterdir())[0].stem}.wav" for w in WORD_TONES]
        (root / "validation_list.txt").write_text("\n".join(val) + "\n")
        test = [f"{w}/{sorted((root / w).iterdir())[1].stem}.wav" for w in WORD_TONES]
        (root / "testing_list.txt").write_text("\n".join(test) + "\n")
    return root


@pytest.fixture
def speech_commands(tmp_path) -> Path:
    return make_speech_commands(tmp_path / "speech_commands", with_lists=True)
