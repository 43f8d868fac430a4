"""The listening spotter without PyTorch: `seqapp spot --stream` and `seqapp listen` run an exported spotter
(.onnx) on onnxruntime, with the detections the checkpoint gives, never importing torch; bad spotter files are
one line."""
import shutil
import textwrap

import numpy as np
import pytest
import soundfile as sf

from conftest import assert_one_line_error, run_cli, run_main, tone
from seqapp import checkpoint
from test_export import export, kws_checkpoint


def recording(path, seed: int = 1):
    rng = np.random.default_rng(seed)
    wave = np.concatenate([np.concatenate([tone(f, 0.7), 0.02 * rng.standard_normal(9000)])
                           for f in rng.uniform(200, 4000, 12)]).astype(np.float32)
    sf.write(path, wave, 16000)
    return path


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """features -> (bundle checkpoint, its export), each made once for this file's tests (exports are slow)."""
    made = {}

    def get(features: str):
        if features not in made:
            made[features] = two_stage(tmp_path_factory.mktemp(features), features)
        return made[features]
    return get


def two_stage(tmp_path, features: str):
    """A bundle (streaming model and clip verifier) made by hand, and its export."""
    stream = checkpoint.load(kws_checkpoint(tmp_path / "stream.pt", streaming=True, sharpen=60.0, features=features))
    clip = checkpoint.load(kws_checkpoint(tmp_path / "clip.pt", streaming=False, layers=1, features=features,
                                          sharpen=30.0))
    bundle = {**stream, "verifier": {"task_state": clip["task_state"], "model": clip["model"]}, "trigger": 0.3}
    checkpoint.save(bundle, tmp_path / "bundle.pt")
    export(tmp_path / "bundle.pt", tmp_path / "bundle.onnx")
    return tmp_path / "bundle.pt", tmp_path / "bundle.onnx"


@pytest.mark.parametrize("features", ["logmel", "embedding"])
def test_an_exported_two_stage_spotter_finds_what_its_checkpoint_finds(tmp_path, bundles, features):
    # sharpened posteriors and a threshold the averages never come near: float rounding cannot move a detection
    ckpt, onnx = bundles(features)
    rec = recording(tmp_path / "rec.wav")
    ours = run_main("spot", "--checkpoint", ckpt, "--stream", rec, "--threshold", "0.55")
    exported = run_main("spot", "--checkpoint", onnx, "--stream", rec, "--threshold", "0.55")
    assert ours.returncode == exported.returncode == 0, exported.stderr
    assert len(ours.stdout.splitlines()) >= 2
    assert exported.stdout == ours.stdout


def test_an_exported_window_head_finds_what_its_checkpoint_finds(tmp_path):
    # the graph carries the last steps' features in place of an encoder state
    ckpt = kws_checkpoint(tmp_path / "window.pt", streaming=True, sharpen=60.0, window=6)
    export(ckpt, tmp_path / "window.onnx")
    rec = recording(tmp_path / "rec.wav")
    ours = run_main("spot", "--checkpoint", ckpt, "--stream", rec, "--threshold", "0.55")
    exported = run_main("spot", "--checkpoint", tmp_path / "window.onnx", "--stream", rec, "--threshold", "0.55")
    assert ours.returncode == exported.returncode == 0, exported.stderr
    assert len(ours.stdout.splitlines()) >= 2
    assert exported.stdout == ours.stdout


def test_the_two_graphs_of_an_embedding_spotter_hold_the_embedding_once(bundles):
    _, onnx = bundles("embedding")
    shared = onnx.with_name("bundle.weights").stat().st_size
    assert shared > 1.2e6  # the embedding's 330k weights in float32
    assert all(onnx.with_name(f).stat().st_size < shared / 2 for f in ("bundle.onnx", "bundle.verifier.onnx"))


@pytest.mark.parametrize("features", ["logmel", "embedding"])
def test_the_runtime_gives_every_step_pytorch_gives_to_the_recordings_end(tmp_path, bundles, features):
    # chunks of several steps (three 80 ms vectors on the embedding): the last partial chunk is read too
    from seqapp.speech.listening.runtime import OnnxSpotter
    from seqapp.speech.listening.stream import posteriors
    from seqapp.speech.settings import model_from_checkpoint

    ckpt, onnx = bundles(features)
    spotter = OnnxSpotter(onnx)
    wave = sf.read(recording(tmp_path / "rec.wav"), dtype="float32")[0][:16000 * 7 + 4321]
    seen = []
    spotter.run([wave[i: i + 5000] for i in range(0, len(wave), 5000)], on_posteriors=lambda t, p: seen.append((t, p)))
    times, probs = np.concatenate([t for t, _ in seen]), np.concatenate([p for _, p in seen])
    import torch

    want_times, want = posteriors(model_from_checkpoint(checkpoint.load(ckpt))[0], torch.from_numpy(wave))
    assert spotter.meta["steps_per_chunk"] > 1 and len(want) % spotter.meta["steps_per_chunk"]  # a partial chunk
    np.testing.assert_allclose(times, want_times)
    np.testing.assert_allclose(probs, want, atol=1e-3)  # sharpened 60x: float rounding in the features shows


def test_a_reader_that_stops_reading_stops_spot_quietly(tmp_path, bundles):
    # `seqapp spot --stream f.wav | head -1`: the pipe closes under the command, which ends without a word
    import subprocess
    import sys

    from conftest import ROOT

    _, onnx = bundles("logmel")
    proc = subprocess.Popen([sys.executable, "-m", "seqapp", "spot", "--checkpoint", str(onnx), "--stream",
                             str(recording(tmp_path / "rec.wav")), "--threshold", "0.55"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    assert proc.stderr.read() == b"" and proc.wait(timeout=120) == 141


def test_spot_stream_on_an_exported_spotter_never_imports_torch(tmp_path):
    onnx = tmp_path / "stream.onnx"
    export(kws_checkpoint(tmp_path / "stream.pt", streaming=True, sharpen=60.0), onnx)
    rec = recording(tmp_path / "rec.wav")
    script = textwrap.dedent(f"""
        import sys
        from seqapp.cli import main
        code = main(["spot", "--checkpoint", {str(onnx)!r}, "--stream", {str(rec)!r}, "--threshold", "0.55"])
        print("torch imported:", "torch" in sys.modules, "exit", code)
    """)
    proc = run_cli("-c", script)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "torch imported: False exit 0"
    assert len(proc.stdout.splitlines()) >= 3  # detections, then the line above


def test_bad_exported_spotters_are_one_line(tmp_path, bundles, monkeypatch):
    rec = recording(tmp_path / "rec.wav")
    _, two_stages = bundles("logmel")
    clip = two_stages.with_name("bundle.verifier.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model" * 50)
    onnx = tmp_path / "bundle.onnx"  # a two-stage spotter without its verifier beside it
    shutil.copy(two_stages, onnx)
    shutil.copy(two_stages.with_name("bundle.weights"), tmp_path)
    alone = tmp_path / "alone" / "bundle.onnx"  # ... and one without the weights its two graphs share
    alone.parent.mkdir()
    shutil.copy(two_stages, alone)
    shutil.copy(clip, alone.parent)
    cut = tmp_path / "cut" / "bundle.onnx"  # ... and one whose shared weights were cut short
    cut.parent.mkdir()
    shutil.copy(two_stages, cut)
    shutil.copy(clip, cut.parent)
    weights = two_stages.with_name("bundle.weights").read_bytes()
    cut.with_name("bundle.weights").write_bytes(weights[: len(weights) // 2])
    cases = [((tmp_path / "junk.onnx",), "is not a model seqapp exported"),
             ((clip,), "is not a streaming spotter"),
             ((tmp_path / "missing.onnx",), "no such spotter"),
             ((onnx,), "its verifier"),
             ((alone,), "reads weights from"),
             ((cut,), "reads weights from"),
             ((onnx, "--false-alarms-per-hour", "2"), "keeps the operating point"),
             ((onnx, "--threshold", "1.5"), "--threshold")]
    for (path, *flags), message in cases:
        assert_one_line_error(run_main("spot", "--checkpoint", path, "--stream", rec, *flags), message)
    from seqapp.speech.listening import runtime

    monkeypatch.setattr(runtime, "BUNDLED", tmp_path / "none" / "listening.onnx")
    assert_one_line_error(run_main("spot", "--stream", rec), "no bundled spotter")
    assert_one_line_error(run_main("spot", rec), "needs --checkpoint")


def test_without_a_checkpoint_the_bundled_spotter_listens_and_its_format_guards_it(tmp_path, monkeypatch):
    from seqapp.speech.listening import runtime

    onnx = tmp_path / "listening.onnx"
    export(kws_checkpoint(tmp_path / "stream.pt", streaming=True, sharpen=60.0, features="embedding"), onnx)
    rec = recording(tmp_path / "rec.wav")
    monkeypatch.setattr(runtime, "BUNDLED", onnx)
    bundled = run_main("spot", "--stream", rec, "--threshold", "0.55")
    named = run_main("spot", "--checkpoint", onnx, "--stream", rec, "--threshold", "0.55")
    assert bundled.returncode == 0 and bundled.stdout == named.stdout and bundled.stdout
    monkeypatch.setattr(runtime, "READS", (runtime.FORMAT + 1,))
    assert_one_line_error(run_main("spot", "--stream", rec), "format")


def test_the_spotter_that_ships_with_seqapp_listens_without_a_checkpoint(tmp_path):
    from seqapp.speech.listening import runtime

    assert runtime.BUNDLED.is_file(), "make bundled-spotter writes it"
    quiet = tmp_path / "noise.wav"
    sf.write(quiet, 0.003 * np.random.default_rng(0).standard_normal(48000).astype(np.float32), 16000)
    proc = run_main("spot", "--stream", quiet, "--json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""  # three seconds of faint noise hold no keyword
