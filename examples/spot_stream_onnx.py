"""Find keywords in a recording with a streaming spotter exported by `seqapp export`: onnxruntime, numpy and
soundfile only.

    seqapp export --checkpoint runs/kws_stream/best.pt --out kws_stream.onnx
    python examples/spot_stream_onnx.py kws_stream.onnx recording.wav

The model is a chunk step (100 ms of log-mel steps, or 3 embedding vectors of 80 ms: samples and the recurrent
state in, per-step posteriors and the new state out; the embedding's last frames are state too); its labels,
chunk sizes and decision settings (per-keyword thresholds when calibrated) are JSON in the model's metadata. A
two-stage spotter (a bundle) also wrote NAME.verifier.onnx beside it, a clip model that scores the last second
whenever the streaming score reaches the trigger, and NAME.weights, the weights both graphs read (onnxruntime
finds it beside them). The decision layer is seqapp's (TensorFlow's
RecognizeCommands, plus the verifier): it prints what `seqapp spot --stream` prints for the checkpoint."""
import argparse
import json
import sys
from collections import deque
from pathlib import Path

import numpy as np
import onnxruntime as ort
import soundfile as sf


class DecisionLayer:
    """seqapp.speech.listening.decision.DecisionLayer, copied so this file needs no seqapp: average the posteriors over
    a window, fire when a keyword's average reaches its threshold (with a verifier: reaches the trigger, and
    the geometric mean with the verifier's probability reaches the threshold), then stay quiet for the
    suppression time."""

    def __init__(self, labels, keywords, settings, step_seconds, verify=None):
        self.labels, self.cfg, self.verify = labels, settings, verify
        own = settings.get("thresholds") or {}
        self.thresholds = np.array([own.get(n, settings["threshold"]) if k else np.inf for n, k in zip(labels, keywords)])
        self.triggers = self.thresholds if verify is None else np.where(keywords, settings["trigger"], np.inf)
        self.window = deque(maxlen=max(1, round(settings["average_ms"] / 1000 / step_seconds)))
        self.total = np.zeros(len(labels), dtype=np.float64)
        self.last_time = self.last_check = -np.inf

    def update(self, time, probs):
        probs = np.asarray(probs, dtype=np.float64)
        if len(self.window) == self.window.maxlen:
            self.total -= self.window[0]
        self.window.append(probs)
        self.total += probs
        if len(self.window) < self.cfg["min_count"]:
            return None
        average = self.total / len(self.window)
        margin = average - self.triggers
        best = int(margin.argmax())
        if margin[best] < 0 or time - self.last_time < self.cfg["suppression_ms"] / 1000 - 1e-6:
            return None
        score = float(average[best])
        if self.verify is not None:  # below threshold² the geometric mean cannot pass: the verifier is not asked
            if score < self.thresholds[best] ** 2 or time - self.last_check < self.cfg["recheck_ms"] / 1000 - 1e-6:
                return None
            self.last_check = time
            score = float(np.sqrt(score * self.verify(time, best)))
            if score < self.thresholds[best]:
                return None
        self.last_time = time
        return self.labels[best], score


class Verifier:
    """The clip graph on 1 s windows ending `verify_ends_s` before a trigger; the best probability of the
    triggering label. It reads the last 2 s of the stream, kept by `hear`."""

    def __init__(self, path, labels, ends_s, rate):
        self.sess = session(path)
        clip_labels = json.loads(self.sess.get_modelmeta().custom_metadata_map["seqapp"])["labels"]
        self.columns = [clip_labels.index(n) if n in clip_labels else None for n in labels]
        self.ends, self.rate = ends_s, rate
        self.audio, self.offset = np.zeros(0, np.float32), 0

    def hear(self, block):
        self.audio = np.concatenate([self.audio, block])
        drop = max(0, len(self.audio) - int(2.0 * self.rate))
        self.audio, self.offset = self.audio[drop:], self.offset + drop

    def __call__(self, time, label):
        if self.columns[label] is None:
            return 0.0
        windows = np.zeros((len(self.ends), self.rate), np.float32)
        for i, back in enumerate(self.ends):
            stop = int(round(time * self.rate)) - self.offset - int(back * self.rate)
            piece = self.audio[max(0, stop - self.rate): max(0, stop)]
            windows[i, self.rate - len(piece):] = piece
        logits = self.sess.run(None, {"wave": windows})[0].astype(np.float64)
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        return float(probs[:, self.columns[label]].max())


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def mono_blocks(path, rate, seconds=0.1):
    """The recording as float32 mono blocks, channels averaged; it must already be at the model's rate."""
    with sf.SoundFile(path) as f:
        if f.samplerate != rate:
            sys.exit(f"spot_stream_onnx: {path} is at {f.samplerate} Hz; resample it to {rate} Hz first "
                     f"(e.g. sox {path} -r {rate} out.wav), or use seqapp spot --stream, which resamples")
        for block in f.blocks(blocksize=int(rate * seconds), dtype="float32", always_2d=True):
            if not np.isfinite(block).all():
                sys.exit(f"spot_stream_onnx: {path} holds samples that are not finite numbers (NaN or infinity)")
            yield block.mean(axis=1)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("recording", help="a WAV/FLAC file at the model's sample rate (16 kHz)")
    p.add_argument("--threshold", type=float, help="the decision threshold (default: the model's)")
    p.add_argument("--json", action="store_true", help="one JSON object per detection")
    args = p.parse_args()
    try:
        sess = session(args.model)
        meta = json.loads(sess.get_modelmeta().custom_metadata_map["seqapp"])
    except Exception as e:  # noqa: BLE001 (a bad file is one line, whatever onnxruntime says)
        sys.exit(f"spot_stream_onnx: {args.model} is not a model seqapp exported ({str(e).splitlines()[0][:200]})")
    if meta.get("graph") != "stream_chunk":
        sys.exit(f"spot_stream_onnx: {args.model} is not a streaming spotter (export one trained with --streaming)")
    settings = {**meta["decision"], **({"threshold": args.threshold, "thresholds": None}
                                       if args.threshold is not None else {})}
    verifier = None
    if meta.get("verifier"):
        path = Path(args.model).with_name(meta["verifier"])
        if not path.is_file():
            sys.exit(f"spot_stream_onnx: {args.model} is a two-stage spotter: its verifier {path} is missing")
        verifier = Verifier(path, meta["labels"], meta["verify_ends_s"], meta["sample_rate"])
    layer = DecisionLayer(meta["labels"], meta["keywords"], settings, meta["step_seconds"], verifier)
    shapes = meta.get("state_shapes") or [[meta["layers"], 1, meta["hidden"]]] * (len(meta["inputs"]) - 1)
    state = {name: np.zeros(shape, np.float32) for name, shape in zip(meta["inputs"][1:], shapes)}
    read, advance, k, hop = meta["chunk_samples"], meta["advance_samples"], meta["frame_stack"], meta["hop"]
    # zeros before the stream feed the warm-up calls: they fill the embedding's state ("ear"); their posteriors
    # are dropped, and the other states start from zeros after them
    buffer, length = np.zeros(meta.get("lead_samples", 0), np.float32), 0
    warmup, steps = meta.get("warmup_calls", 0), 0

    def run_chunk(chunk, keep=None):
        """One call of the graph; the first `keep` steps' posteriors through the decision layer."""
        nonlocal state, steps, warmup
        probs, *new = sess.run(None, {"samples": chunk[None], **state})
        state = dict(zip(meta["inputs"][1:], new))
        if warmup:
            warmup -= 1
            state = state if warmup else {n: s if n == "ear" else np.zeros_like(s) for n, s in state.items()}
            return
        for p_step in probs[0][:keep]:
            # when the audio this step depends on has all arrived: its last frame's last sample
            time = (((steps + 1) * k - 1) * hop + meta["n_fft"]) / meta["sample_rate"]
            steps += 1
            found = layer.update(time, p_step)
            if found:
                label, score = found
                print(json.dumps({"label": label, "time": round(time, 3), "score": round(score, 4)})
                      if args.json else f"{time:9.2f} s  {label:<6} {score:.3f}", flush=True)

    try:
        blocks = mono_blocks(args.recording, meta["sample_rate"])
        for block in blocks:
            buffer, length = np.concatenate([buffer, block]), length + len(block)
            if verifier is not None:
                verifier.hear(block)
            while len(buffer) >= read:
                run_chunk(buffer[:read])
                buffer = buffer[advance:]
        # the end: the steps the last partial chunk completes (zeros after them, never read as steps)
        left = (((length - meta["n_fft"]) // hop + 1) // k if length >= meta["n_fft"] else 0) - steps
        if left > 0:
            run_chunk(np.pad(buffer, (0, read - len(buffer))), keep=left)
    except (sf.LibsndfileError, RuntimeError) as e:
        sys.exit(f"spot_stream_onnx: cannot read {args.recording}: {str(e).splitlines()[0][:200]}")


if __name__ == "__main__":
    main()
