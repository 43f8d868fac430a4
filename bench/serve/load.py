"""seqapp serve under load, on this machine only: 8 listeners streaming a recording in real time (40 ms chunks)
and 4 writers generating text, all at once, against one server; then a client that leaves mid-stream and one
that sends a malformed frame, and the server still answering.

    python bench/serve/load.py --lm runs/lm/best.pt --kws runs/custom/best.pt --audio runs/custom_bench/wake_words.wav \
        --seconds 60

Reports each listener's real-time factor (the server's spotting time / audio time), each writer's chars/s,
and whether every listener got exactly the detections `seqapp spot --stream` finds on the same samples."""
from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from seqapp.serve.launch import running_server  # noqa: E402

CHUNK = 640  # 40 ms


async def listener(url: str, pcm: np.ndarray, real_time: bool = True) -> dict:
    import websockets

    detections, started = [], time.perf_counter()
    async with websockets.connect(url + "/ws/listen", max_size=2**22) as ws:
        async def send():
            for i in range(0, len(pcm), CHUNK):
                await ws.send(pcm[i: i + CHUNK].tobytes())
                if real_time:
                    await asyncio.sleep(max(0.0, started + (i + CHUNK) / 16000 - time.perf_counter()))
            await ws.send(json.dumps({"end": True}))
        sender = asyncio.ensure_future(send())
        async for message in ws:
            m = json.loads(message)
            if "detection" in m:
                detections.append(m["detection"])
            if m.get("done") or m.get("error"):
                break
    await sender
    return {"detections": detections, "done": m}


async def writer(url: str, chars: int, seed: int) -> dict:
    import websockets

    async with websockets.connect(url + "/ws/write") as ws:
        await ws.send(json.dumps({"prompt": "ROMEO:", "length": chars, "seed": seed}))
        while True:
            m = json.loads(await ws.recv())
            if m.get("done") or m.get("error"):
                return m


async def misbehaving(url: str, pcm: np.ndarray) -> dict:
    import websockets

    out = {}
    async with websockets.connect(url + "/ws/listen") as ws:  # leaves after one second of audio
        await ws.send(pcm[:16000].tobytes())
    async with websockets.connect(url + "/ws/listen") as ws:
        await ws.send(b"\x01\x02\x03")
        out["malformed"] = json.loads(await ws.recv()).get("error")
    return out


async def load(url: str, pcm: np.ndarray, listeners: int, writers: int, chars: int) -> dict:
    tasks = [listener(url, pcm) for _ in range(listeners)] + [writer(url, chars, s) for s in range(writers)]
    started = time.perf_counter()
    results = await asyncio.gather(*tasks)
    wall = time.perf_counter() - started
    after = await misbehaving(url, pcm)
    again = await listener(url, pcm[: 16000 * 5], real_time=False)
    return {"listeners": results[:listeners], "writers": results[listeners:], "wall_s": wall, **after,
            "after_misbehaving": again["done"]}


def cli_detections(kws: str, pcm: np.ndarray, threshold: str | None) -> list[dict]:
    import soundfile as sf

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "same.wav"
        sf.write(str(wav), pcm, 16000, subtype="PCM_16")
        flags = ["--threshold", threshold] if threshold else []
        out = subprocess.run([sys.executable, "-m", "seqapp", "spot", "--checkpoint", kws, "--stream", str(wav),
                              "--json", *flags], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    return [json.loads(line) for line in out.splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lm", required=True)
    parser.add_argument("--kws", required=True)
    parser.add_argument("--audio", required=True, help="a recording the listeners stream")
    parser.add_argument("--seconds", type=float, default=60.0, help="how much of it each listener streams")
    parser.add_argument("--listeners", type=int, default=8)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--chars", type=int, default=2000, help="characters each writer asks for")
    parser.add_argument("--threshold")
    parser.add_argument("--json")
    args = parser.parse_args()
    from seqapp.speech.data.sources import file_blocks

    wave = np.concatenate(list(file_blocks(args.audio)))[: int(args.seconds * 16000)]
    pcm = (np.clip(wave, -1, 1) * 32767).astype("<i2")
    flags = ["--threshold", args.threshold] if args.threshold else []
    with running_server("--lm", args.lm, "--kws", args.kws, *flags) as port:
        result = asyncio.run(load(f"ws://127.0.0.1:{port}", pcm, args.listeners, args.writers, args.chars))
    expected = cli_detections(args.kws, pcm, args.threshold)
    print(f"{args.listeners} listeners x {len(pcm) / 16000:.0f} s of audio in real time, {args.writers} writers x "
          f"{args.chars} chars, at once: {result['wall_s']:.1f} s wall")
    for i, r in enumerate(result["listeners"]):
        done = r["done"]
        print(f"listener {i}: real-time factor {done['compute_s'] / done['seconds']:.4f}, {len(r['detections'])} "
              f"detections, {'the same as' if r['detections'] == expected else 'NOT the same as'} spot --stream "
              f"({len(expected)})")
    for i, w in enumerate(result["writers"]):
        print(f"writer {i}: {w.get('chars')} chars at {w.get('chars_per_s', 0):.0f} chars/s")
    print(f"a malformed frame: {result['malformed']!r}; a listener after the misbehaving clients: "
          f"{'served' if result['after_misbehaving'].get('done') else 'NOT served'}")
    if args.json:
        summary = {"listeners": [{"rtf": r["done"]["compute_s"] / r["done"]["seconds"], "detections": len(r["detections"]),
                                  "same_as_cli": r["detections"] == expected} for r in result["listeners"]],
                   "writers": [{"chars": w.get("chars"), "chars_per_s": w.get("chars_per_s")} for w in result["writers"]],
                   "wall_s": result["wall_s"], "audio_s": len(pcm) / 16000, "malformed": result["malformed"]}
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
