"""What int8 costs and what the exported models weigh and cost to run, for trained checkpoints.

    python bench/export.py --lm runs/lm/best.pt --kws runs/kws/best.pt \
        --test-set ../shared/data/speech_commands_test --kws-stream runs/kws_stream/best.pt \
        --stream runs/streams/test20.wav --labels runs/streams/test20.csv [--val-tokens 20000]

- the language model: nats/char on the first --val-tokens of its validation split, PyTorch against the
  exported step in onnxruntime, fp32 and int8 (one token at a time, the state carried);
- the streaming spotter: the exported chunk step over a labelled stream, fp32 and int8, one onnxruntime
  thread: real-time factor, and keywords found / false alarms with seqapp's decision layer at the model's
  threshold, beside seqapp's own PyTorch stream;
- a clip model: accuracy on a test set, PyTorch against its export in fp32 and int8, and clips/s;
- file sizes."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seqapp import checkpoint  # noqa: E402
from seqapp.cli import main as seqapp_main  # noqa: E402
from seqapp.onnx_export import metadata, session  # noqa: E402
from seqapp.task import EvalContext  # noqa: E402

torch.set_num_threads(1)


def export(ckpt: str, out: Path, int8: bool) -> Path:
    assert seqapp_main(["export", "--checkpoint", ckpt, "--out", str(out), *(["--int8"] if int8 else [])]) == 0
    return out


def lm_figures(ckpt_path: str, tmp: Path, val_tokens: int) -> dict:
    from seqapp.text.corpus import TextCorpus
    from seqapp.text.task import LMConfig, model_from_checkpoint, score_stream, scored_chars

    ckpt = checkpoint.load(ckpt_path, task="lm")
    model, tokenizer = model_from_checkpoint(ckpt)
    cfg = LMConfig.from_dict(ckpt["task_state"]["config"])
    ids = TextCorpus(cfg.data, cfg.val_fraction).encode(tokenizer, "val")[:val_tokens].astype(np.int64)
    n_chars = scored_chars(tokenizer, ids)
    with torch.no_grad():
        result = {"pytorch": score_stream(model, ids, n_chars, EvalContext(torch.device("cpu"), "fp32"))["loss"]}
    for kind in ("fp32", "int8"):
        path = export(ckpt_path, tmp / f"lm_{kind}.onnx", kind == "int8")
        sess, meta = session(path), metadata(session(path))
        state = {n: np.zeros((meta["layers"], 1, meta["hidden"]), np.float32) for n in meta["inputs"][1:]}
        total, started = 0.0, time.perf_counter()
        for t in range(len(ids) - 1):
            logits, *new = sess.run(None, {"tokens": ids[t: t + 1], **state})
            state = dict(zip(meta["inputs"][1:], new))
            z = logits[0].astype(np.float64)
            total += np.log(np.exp(z - z.max()).sum()) + z.max() - z[ids[t + 1]]
        result[kind] = total / n_chars
        result[f"{kind}_us_per_step"] = (time.perf_counter() - started) / (len(ids) - 1) * 1e6
        result[f"{kind}_mb"] = path.stat().st_size / 1e6
    result["tokens"] = len(ids)
    return result


def stream_figures(ckpt_path: str, tmp: Path, stream: str, labels: str) -> dict:
    import soundfile as sf

    from seqapp.speech.listening.decision import detect
    from seqapp.speech.listening.runtime import OnnxSpotter
    from seqapp.speech.listening.spotter import load_spotter, run_stream
    from seqapp.speech.listening.stream import step_times
    from seqapp.speech.data.streams import read_labels
    from seqapp.speech.data.sources import file_blocks
    from seqapp.speech.listening.scoring import score_detections

    spotter = load_spotter(ckpt_path)
    model, names, decision = spotter.model, spotter.names, spotter.decision
    truth = read_labels(labels)
    wave = sf.read(stream, dtype="float32")[0]
    seconds = len(wave) / 16000
    started = time.perf_counter()
    times, probs, _ = run_stream(spotter, file_blocks(stream), decide=False)
    result = {"pytorch": {**score_detections(detect(times, probs, names, decision, model.step_seconds), truth,
                                             float(times[-1])), "rtf": (time.perf_counter() - started) / seconds}}
    for kind in ("fp32", "int8"):
        path = export(ckpt_path, tmp / f"kws_{kind}.onnx", kind == "int8")
        started = time.perf_counter()
        out = [p for _, p in OnnxSpotter(path).posteriors(wave[i: i + 1600] for i in range(0, len(wave), 1600))]
        rtf = (time.perf_counter() - started) / seconds
        p = np.concatenate(out)
        t = step_times(model, np.arange(len(p)))
        scored = score_detections(detect(t, p, names, decision, model.step_seconds), truth, float(t[-1]))
        result[kind] = {**scored, "rtf": rtf, "mb": path.stat().st_size / 1e6,
                        "largest_posterior_difference": float(np.abs(p - probs[: len(p)]).max())}
    return result


def clip_figures(ckpt_path: str, tmp: Path, test_set: str) -> dict:
    """A clip model's accuracy on a test set: PyTorch, and its export in fp32 and int8."""
    from seqapp.speech.data.dataset import load_eval_set
    from seqapp.speech.settings import model_from_checkpoint
    from seqapp.speech.training.evaluate import score

    model, names = model_from_checkpoint(checkpoint.load(ckpt_path, task="kws"))
    waves, labels, what = load_eval_set(Path(test_set), names)
    ctx = EvalContext(torch.device("cpu"), "fp32")
    result = {"set": what, "clips": len(labels),
              "pytorch": score(model, waves, labels, names, ctx)["accuracy"]}
    for kind in ("fp32", "int8"):
        path = export(ckpt_path, tmp / f"clip_{kind}.onnx", kind == "int8")
        sess = session(path, threads=2)
        started = time.perf_counter()
        logits = np.concatenate([sess.run(None, {"wave": waves[i: i + 64].numpy()})[0]
                                 for i in range(0, len(waves), 64)])
        result[kind] = float((logits.argmax(axis=1) == np.asarray(labels)).mean())
        result[f"{kind}_clips_per_s"] = len(waves) / (time.perf_counter() - started)
        result[f"{kind}_mb"] = path.stat().st_size / 1e6
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lm")
    p.add_argument("--kws", help="a clip model, scored on --test-set")
    p.add_argument("--test-set")
    p.add_argument("--kws-stream")
    p.add_argument("--stream")
    p.add_argument("--labels")
    p.add_argument("--val-tokens", type=int, default=20000)
    p.add_argument("--json")
    args = p.parse_args()
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.lm:
            figures["lm"] = lm_figures(args.lm, Path(tmp), args.val_tokens)
            print(json.dumps({"lm": figures["lm"]}), flush=True)
        if args.kws:
            figures["kws"] = clip_figures(args.kws, Path(tmp), args.test_set)
            print(json.dumps({"kws": figures["kws"]}), flush=True)
        if args.kws_stream:
            figures["kws_stream"] = stream_figures(args.kws_stream, Path(tmp), args.stream, args.labels)
            print(json.dumps({"kws_stream": figures["kws_stream"]}), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
