import functools
import os
import pickle
import resource
import signal
import subprocess
import sys
import traceback
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import settings

# Under CI=true hypothesis draws the same examples every run (a failure there is reproducible, never luck);
# locally it explores new ones each run, and anything it finds is kept as an @example in the test.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI", "").lower() in ("1", "true") else "default")

# Under pytest-xdist (pyproject's addopts: two workers, a test file each), each worker and every process it
# starts computes on one thread: two workers on two cores, not four threads fighting for them.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
TEXT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
        "First Citizen:\nYou are all resolved rather to die than to famish?\n\n") * 40


def run_cli(*args, cwd=None, timeout=300, env=None, input_bytes: bytes | None = None):
    """Run the real command line (python -m seqapp ...) and return the completed process (text output);
    `input_bytes` is fed to its standard input."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=cwd or ROOT, capture_output=True, timeout=timeout,
                          env=full_env, input=input_bytes if input_bytes is not None else b"")
    proc.stdout, proc.stderr = proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
    return proc


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


MEMORY_CAP_MB = 1024


def _virtual_memory_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def memory_capped(extra_mb: int = MEMORY_CAP_MB, timeout: int = 300):
    """Run the test in a forked child whose address space may grow by at most `extra_mb` (RLIMIT_AS): code
    that feeds untrusted bytes to a loader fails this one test with a clear message if it tries to allocate
    gigabytes, instead of waking the kernel's OOM killer on the whole machine."""
    def decorate(test):
        @functools.wraps(test)
        def wrapper(*args, **kwargs):
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: cap, run, report, and leave without running pytest's exit handlers
                os.close(read_end)
                outcome = None
                try:
                    import torch

                    torch.set_num_threads(1)  # as DataLoader workers do after a fork
                    signal.alarm(int(timeout))  # and bounded time: SIGALRM ends a child that hangs
                    limit = _virtual_memory_bytes() + extra_mb * 2**20
                    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
                    test(*args, **kwargs)
                except MemoryError:
                    outcome = f"MemoryError: the test asked for more than {extra_mb} MB above its start"
                except BaseException as e:  # noqa: BLE001  (reported to the parent, which fails)
                    outcome = "".join(traceback.format_exception(e))
                    if "can't allocate memory" in outcome or "not enough memory" in outcome:
                        outcome = f"over the {extra_mb} MB memory cap:\n{outcome}"
                with os.fdopen(write_end, "wb") as f:
                    f.write(pickle.dumps(outcome))
                os._exit(0)
            os.close(write_end)
            with os.fdopen(read_end, "rb") as f:
                data = f.read()
            _, status = os.waitpid(pid, 0)
            if not data:
                pytest.fail(f"the memory-capped child died (wait status {status}): killed for memory, or over {timeout} s")
            outcome = pickle.loads(data)
            if outcome is not None:
                pytest.fail(outcome, pytrace=False)
        return wrapper
    return decorate


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


@pytest.fixture(scope="session")
def served(tmp_path_factory):
    """A tiny language model and a tiny streaming spotter (on tones), and a labelled stream: what seqapp serve
    serves in its tests."""
    import types

    tmp = tmp_path_factory.mktemp("serve")
    text = tmp / "tiny.txt"
    text.write_text(TEXT)
    lm = run_main("train", "lm", "--data", text, "--out", tmp / "lm", "--hidden", "32", "--layers", "1",
                  "--batch-size", "4", "--seq-len", "16", "--steps", "10", "--eval-every", "5", "--device", "cpu")
    assert lm.returncode == 0, lm.stderr
    root = make_speech_commands(tmp / "sc", per_word=8, with_lists=True)
    kws = run_main("train", "kws", "--data", root, "--streaming", "--steps", "40", "--eval-every", "40", "--hidden",
                   "24", "--layers", "1", "--batch-size", "8", "--words-per-sequence", "2", "--out", tmp / "kws",
                   "--device", "cpu")
    assert kws.returncode == 0, kws.stderr
    made = run_main("make-stream", "--data", root, "--minutes", "0.3", "--out", tmp / "test.wav")
    assert made.returncode == 0, made.stderr
    return types.SimpleNamespace(lm=tmp / "lm" / "best.pt", kws=tmp / "kws" / "best.pt", wav=tmp / "test.wav", tmp=tmp)
