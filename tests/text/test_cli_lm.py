"""The language model through the real command line, as a user runs it."""
import json

import pytest
import torch

from conftest import ROOT, TEXT, assert_one_line_error, run_cli, run_main

TINY = ["--hidden", "32", "--layers", "1", "--batch-size", "4", "--seq-len", "16", "--steps", "10",
        "--eval-every", "5", "--device", "cpu"]


def test_train_evaluate_generate(tmp_path, text_file):
    out = tmp_path / "run"
    train = run_cli("train.py", "lm", "--data", str(text_file), "--tokenizer", "char", "--cell", "gru",
                    "--out", str(out), "--seed", "3", *TINY)
    assert train.returncode == 0, train.stderr
    assert "seqapp generate --checkpoint" in train.stdout  # it ends by saying how to generate more
    for name in ("best.pt", "last.pt", "metrics.jsonl", "curves.png", "config.json"):
        assert (out / name).exists(), name

    ev = run_cli("evaluate.py", "lm", "--checkpoint", str(out / "best.pt"), "--data", str(text_file), "--json")
    assert ev.returncode == 0, ev.stderr
    figures = json.loads(ev.stdout)
    assert figures["bpc"] == pytest.approx(figures["loss"] / 0.6931471805599453)
    assert figures["perplexity"] > 1 and figures["chars"] == int(len(TEXT) * 0.1) - 1
    best = torch.load(out / "best.pt", weights_only=True)
    assert figures["loss"] == pytest.approx(best["best"], rel=0.02)  # the split training validated on

    gen = run_cli("-m", "seqapp", "generate", "--checkpoint", str(out / "best.pt"), "--prompt", "All:",
                  "--length", "40", "--temperature", "0.8", "--top-k", "10", "--seed", "1")
    again = run_cli("-m", "seqapp", "generate", "--checkpoint", str(out / "best.pt"), "--prompt", "All:",
                    "--length", "40", "--temperature", "0.8", "--top-k", "10", "--seed", "1")
    assert gen.returncode == 0, gen.stderr
    assert gen.stdout.startswith("All:") and gen.stdout == again.stdout


def test_sentencepiece_model_scores_per_character(tmp_path, text_file):
    out = tmp_path / "sp"
    train = run_cli(ROOT / "train.py", "lm", "--data", text_file.name, "--tokenizer", "sentencepiece",  # relative
                    "--vocab-size", "400", "--out", str(out), *TINY, cwd=text_file.parent)
    assert train.returncode == 0, train.stderr
    ev = run_cli("evaluate.py", "lm", "--checkpoint", str(out / "best.pt"), "--json")  # from another folder
    assert ev.returncode == 0, ev.stderr
    figures = json.loads(ev.stdout)
    assert figures["tokens"] < figures["chars"]  # several characters per piece, loss still per character
    assert figures["chars"] == int(len(TEXT) * 0.1) - 1  # counted exactly from the pieces
    gen = run_cli("-m", "seqapp", "generate", "--checkpoint", str(out / "best.pt"), "--length", "20")
    assert gen.returncode == 0, gen.stderr
    text_file.rename(tmp_path / "moved.txt")
    assert_one_line_error(run_main("evaluate", "lm", "--checkpoint", out / "best.pt"), str(text_file), "--data")


def test_resume_refuses_to_overwrite_and_continues(tmp_path, text_file):
    out = tmp_path / "run"
    args = ["train.py", "lm", "--data", str(text_file), "--out", str(out), *TINY]
    assert run_cli(*args).returncode == 0
    assert_one_line_error(run_cli(*args), "--resume")
    longer = run_cli(*args[:-10], *TINY[:-6], "--steps", "10", "--resume")
    assert longer.returncode == 0, longer.stderr


@pytest.mark.parametrize("content,fragment", [
    (None, "not found"),
    (b"", "empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
    ("caf\u00e9 ".encode("latin-1") * 10, "not UTF-8"),
    (b"short text\n", "fewer than one window"),
])
def test_bad_text_files(tmp_path, content, fragment):
    path = tmp_path / "input.txt"
    if content is not None:
        path.write_bytes(content)
    proc = run_main("train", "lm", "--data", path, "--out", tmp_path / "r", *TINY)
    assert_one_line_error(proc, fragment)


@pytest.mark.parametrize("flags,fragment", [
    (["--cell", "transformer"], "unknown cell"),
    (["--hidden", "0"], "--hidden"),
    (["--layers", "-1"], "--layers"),
    (["--batch-size", "0"], "--batch-size"),
    (["--lr", "-1"], "--lr"),
    (["--steps", "0"], "--steps"),
    (["--tokenizer", "bpe"], "invalid choice"),
    (["--bidirectional"], "bidirectional"),
])
def test_bad_flags(tmp_path, text_file, flags, fragment):
    proc = run_main("train", "lm", "--data", text_file, "--out", tmp_path / "r", *TINY, *flags)
    assert_one_line_error(proc, fragment)


def test_bad_checkpoints(tmp_path, text_file):
    good = tmp_path / "run"
    assert run_main("train", "lm", "--data", text_file, "--out", good, *TINY).returncode == 0
    blob = (good / "best.pt").read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(blob[: len(blob) // 2])
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    kws = tmp_path / "kws.pt"
    torch.save({"format_version": 1, "task": "kws", "model": {}}, kws)
    for path, fragment in [(truncated, "corrupt or truncated"), (garbage, "not a readable checkpoint"),
                           (kws, "'kws' checkpoint"), (tmp_path / "missing.pt", "not found")]:
        assert_one_line_error(run_main("evaluate", "lm", "--checkpoint", path), fragment)
        assert_one_line_error(run_main("generate", "--checkpoint", path), fragment)
    assert_one_line_error(run_cli("evaluate.py", "lm", "--checkpoint", str(truncated)), "truncated")  # and for real


def test_bad_generation_flags(tmp_path, text_file):
    out = tmp_path / "run"
    assert run_main("train", "lm", "--data", text_file, "--out", out, *TINY).returncode == 0
    for flags, fragment in [(["--length", "0"], "--length"), (["--top-p", "1.5"], "--top-p"),
                            (["--temperature", "-1"], "--temperature"), (["--top-k", "0"], "--top-k")]:
        proc = run_main("generate", "--checkpoint", out / "best.pt", *flags)
        assert_one_line_error(proc, fragment)


def test_unreachable_hub_dataset_is_one_line(tmp_path):
    proc = run_cli("train.py", "lm", "--data", "someone/some_text_dataset", "--out", str(tmp_path / "r"), *TINY,
                   env={"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"})
    assert_one_line_error(proc, "someone/some_text_dataset", "--data PATH.txt")


@pytest.mark.parametrize("preset,fragment", [('{"hidden": "big"}', "hidden should be int"),
                                             ('{"hiden": 3}', "unknown settings hiden"),
                                             ("[1, 2]", "one JSON object"), ("{oops", "not valid JSON")])
def test_bad_presets(tmp_path, text_file, preset, fragment):
    path = tmp_path / "preset.json"
    path.write_text(preset)
    proc = run_main("train", "lm", "--config", path, "--data", text_file, "--out", tmp_path / "r")
    assert_one_line_error(proc, fragment)


def test_unwritable_out_folder(tmp_path, text_file):
    blocker = tmp_path / "file"
    blocker.write_text("in the way")
    proc = run_main("train", "lm", "--data", text_file, "--out", blocker / "run", *TINY)
    assert_one_line_error(proc)
