"""Two gloo processes under torchrun against one process with the same global batch."""
import json
import socket

import pytest
import torch

from conftest import run_cli


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from conftest import TEXT

    root = tmp_path_factory.mktemp("ddp")
    data = root / "tiny.txt"
    data.write_text(TEXT)
    alone = run_cli("tests/ddp_worker.py", str(data), str(root / "one"))
    assert alone.returncode == 0, alone.stderr
    two = run_cli("-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}",
                  "--master_addr=127.0.0.1", "tests/ddp_worker.py", str(data), str(root / "two"))
    assert two.returncode == 0, two.stderr
    return root


def test_weights_identical_across_ranks(runs):
    a, b = torch.load(runs / "two" / "rank0.pt"), torch.load(runs / "two" / "rank1.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_two_processes_match_one_with_the_same_global_batch(runs):
    one, two = torch.load(runs / "one" / "rank0.pt"), torch.load(runs / "two" / "rank0.pt")
    for k in one:
        torch.testing.assert_close(two[k], one[k], atol=2e-5, rtol=1e-4)
    best_one = json.loads((runs / "one" / "rank0.json").read_text())["best"]
    best_two = json.loads((runs / "two" / "rank0.json").read_text())["best"]
    assert best_two == pytest.approx(best_one, rel=1e-3)  # validation reduced over both ranks


def test_only_rank_zero_writes(runs):
    assert (runs / "two" / "last.pt").exists() and (runs / "two" / "metrics.jsonl").exists()
    rows = (runs / "two" / "metrics.jsonl").read_text().splitlines()
    assert len([r for r in rows if '"val"' in r]) == 2  # once per validation, not once per rank


def test_torchrun_through_the_cli(tmp_path, text_file):
    out = tmp_path / "run"
    proc = run_cli("-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}",
                   "--master_addr=127.0.0.1", "train.py", "lm", "--data", str(text_file), "--out", str(out),
                   "--hidden", "16", "--layers", "1", "--batch-size", "4", "--seq-len", "16", "--steps", "4",
                   "--eval-every", "2", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["resolved"]["world_size"] == 2
