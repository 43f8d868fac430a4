"""Sample text from a language model exported with `seqapp export`, with onnxruntime and numpy only.

    seqapp export --checkpoint runs/lm/best.pt --out lm.onnx
    python examples/generate_onnx.py lm.onnx --prompt "ROMEO:" --length 500

The model is one step (token ids and the recurrent state in, logits and the new state out); its tokenizer
and sizes are JSON in the model's metadata. For the same seed and settings this prints what
`seqapp generate` prints for the checkpoint (fp32; an int8 model's text drifts from it)."""
import argparse
import codecs
import json
import sys

import numpy as np
import onnxruntime as ort


def sample(logits, temperature, top_k, top_p, rng):
    """seqapp.text.generate.sample, copied so this file needs no seqapp: one uniform draw per stream,
    inverted through the cumulative distribution of the filtered softmax."""
    if temperature == 0:
        return np.asarray(logits).argmax(axis=-1)
    z = np.divide(logits, temperature, dtype=np.float64)
    if top_k and top_k < z.shape[-1]:
        kth = np.partition(z, -top_k, axis=-1)[:, -top_k, None]
        z = np.where(z < kth, -np.inf, z)
    probs = np.exp(z - z.max(axis=-1, keepdims=True))  # unnormalised: the draw below scales to the total
    if top_p is not None and top_p < 1.0:  # keep the smallest set of tokens whose probability reaches top_p
        probs /= probs.sum(axis=-1, keepdims=True)
        order = np.argsort(-probs, axis=-1, kind="stable")
        ranked = np.take_along_axis(probs, order, axis=-1)
        np.put_along_axis(probs, order, np.where(np.cumsum(ranked, axis=-1) - ranked > top_p, 0.0, ranked), axis=-1)
    cumulative = probs.cumsum(axis=-1)
    draw = rng.random((len(z), 1)) * cumulative[:, -1:]
    return (cumulative <= draw).sum(axis=-1)


codecs.register_error("per_byte", lambda e: ("\ufffd" * (e.end - e.start), e.end))


class Tokenizer:
    """The exported tables: characters (one id each, one more for unseen ones) or SentencePiece pieces."""

    def __init__(self, tables):
        self.tables = tables
        if tables["kind"] == "char":
            self.ids = {ch: i for i, ch in enumerate(tables["chars"])}
        else:
            self.pieces = tables["pieces"]
            self.bytes = {i: int(self.pieces[i][3:5], 16) for i in tables["byte_ids"]}  # "<0xE4>"
            self.skip = set(tables["control_ids"]) | {tables["unknown_id"]}
            self.ids = {p: i for i, p in enumerate(self.pieces) if i not in self.bytes and i not in self.skip}
            self.longest = max(map(len, self.ids))

    def encode(self, text):
        t = self.tables
        if t["kind"] == "char":
            return [self.ids.get(ch, t["unknown_id"]) for ch in text]
        # Greedy longest match, unknown characters spelled in bytes. SentencePiece's own segmentation can
        # differ for some prompts (the model reads either); the sampled text is decoded exactly.
        text, ids, i = text.replace(" ", t["space"]), [], 0
        byte_id = {b: i for i, b in self.bytes.items()}
        while i < len(text):
            for n in range(min(self.longest, len(text) - i), 0, -1):
                if text[i: i + n] in self.ids:
                    ids.append(self.ids[text[i: i + n]])
                    i += n
                    break
            else:
                ids.extend(byte_id[b] for b in text[i].encode("utf-8"))
                i += 1
        return ids

    def decode(self, ids):
        t = self.tables
        if t["kind"] == "char":
            return "".join(t["chars"][i] for i in ids if i < t["unknown_id"])
        out = bytearray()
        for i in ids:
            if i in self.bytes:
                out.append(self.bytes[i])
            elif i == t["unknown_id"]:
                out.extend(t["unknown_text"].encode("utf-8"))
            elif i not in self.skip:
                out.extend(self.pieces[i].replace(t["space"], " ").encode("utf-8"))
        return out.decode("utf-8", errors="per_byte")  # as SentencePiece does: one U+FFFD per bad byte


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("--prompt", default="\n")
    p.add_argument("--length", type=int, default=500)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-k", type=int)
    p.add_argument("--top-p", type=float)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    if args.length < 1 or args.temperature < 0 or (args.top_p is not None and not 0 < args.top_p <= 1):
        sys.exit("generate_onnx: --length must be >= 1, --temperature >= 0, --top-p in (0, 1]")
    try:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        sess = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
        meta = json.loads(sess.get_modelmeta().custom_metadata_map["seqapp"])
    except Exception as e:  # noqa: BLE001 (a bad file is one line, whatever onnxruntime says)
        sys.exit(f"generate_onnx: {args.model} is not a model seqapp exported ({str(e).splitlines()[0][:200]})")
    if meta.get("task") != "lm":
        sys.exit(f"generate_onnx: {args.model} is a {meta.get('task')} model, not a language model")
    tokenizer = Tokenizer(meta["tokenizer"])
    state = {name: np.zeros((meta["layers"], 1, meta["hidden"]), np.float32) for name in meta["inputs"][1:]}

    def step(token):
        nonlocal state
        logits, *new = sess.run(None, {"tokens": np.array([token], np.int64), **state})
        state = dict(zip(meta["inputs"][1:], new))
        return logits

    for token in tokenizer.encode(args.prompt or "\n"):  # the prompt, one token at a time
        logits = step(token)
    rng = np.random.default_rng(args.seed)
    sys.stdout.write(args.prompt)
    made, pending = [], []
    for t in range(args.length):
        token = int(sample(logits, args.temperature, args.top_k, args.top_p, rng)[0])
        made.append(token)
        pending.append(token)
        piece = tokenizer.decode(pending)
        if not piece.endswith("\ufffd"):  # a piece can end inside a multi-byte character
            sys.stdout.write(piece)
            sys.stdout.flush()
            pending.clear()
        if t + 1 < args.length:
            logits = step(token)
    print()


if __name__ == "__main__":
    main()
