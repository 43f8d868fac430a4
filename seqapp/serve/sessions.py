"""Each connection's work: a writer (generation in a thread, streamed to the page as it is made), a listener (a
streaming spotter with its own state, fed the page's 16 kHz PCM), and an uploaded file spotted whole."""
from __future__ import annotations

import asyncio
import json
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..errors import UserError
from ..speech.listening.run import run_spotter
from .models import Limits, Models, Stopped, check_generation

SAMPLE_RATE = 16000


async def receive_json(websocket: WebSocket, limits: Limits) -> dict | None:
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        return None
    text = message.get("text")
    if text is None or len(text) > limits.frame_bytes:
        raise UserError(f"expected a JSON text message of at most {limits.frame_bytes // 1024} KB")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise UserError("the message is not JSON") from None


async def writer_session(websocket: WebSocket, models: Models, limits: Limits) -> None:
    """Each request a JSON object of generation settings; the text comes back in pieces as it is made
    ({"text": ...}), then {"done": true, "chars": n, "chars_per_s": r}. {"stop": true} stops it."""
    from ..text.generate import generate

    loop = asyncio.get_running_loop()
    try:
        while True:
            request = await receive_json(websocket, limits)
            if request is None:
                return
            if request.get("stop"):
                continue
            try:
                settings = check_generation(request, limits)
            except UserError as e:
                await websocket.send_json({"error": str(e)})
                continue
            pieces: asyncio.Queue = asyncio.Queue()
            stop = threading.Event()

            class Sink:  # what generate() writes its text to, as `seqapp generate` writes to stdout
                def write(self, piece: str) -> None:
                    if stop.is_set():
                        raise Stopped
                    loop.call_soon_threadsafe(pieces.put_nowait, piece)

                def flush(self) -> None:
                    pass

            def run():
                try:
                    generate(models.lm, models.tokenizer, settings["prompt"], settings["length"],
                             settings["temperature"], settings["top_k"], settings["top_p"], settings["seed"],
                             stream=Sink())
                except Stopped:
                    pass
                finally:
                    loop.call_soon_threadsafe(pieces.put_nowait, None)

            started, chars = time.perf_counter(), 0
            thread = threading.Thread(target=run, daemon=True)
            thread.start()
            stopper = asyncio.ensure_future(websocket.receive())
            while True:
                getter = asyncio.ensure_future(pieces.get())
                done, _ = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if stopper in done:
                    stop.set()
                    message = stopper.result()
                    if message["type"] == "websocket.disconnect":
                        getter.cancel()
                        return
                    stopper = asyncio.ensure_future(websocket.receive())
                if getter in done:
                    piece = getter.result()
                    if piece is None:
                        break
                    chars += len(piece)
                    await websocket.send_json({"text": piece})
                else:
                    getter.cancel()
            stopper.cancel()
            seconds = time.perf_counter() - started
            await websocket.send_json({"done": True, "stopped": stop.is_set(), "chars": chars,
                                       "chars_per_s": chars / max(seconds, 1e-9)})
    except UserError as e:
        await websocket.send_json({"error": str(e)})
        await close_quietly(websocket, 1003)
    except (WebSocketDisconnect, RuntimeError):  # the client left (Starlette raises RuntimeError on a late send)
        return


async def listener_session(websocket: WebSocket, models: Models, limits: Limits, keep_audio: str | None) -> None:
    """Binary messages of 16-bit little-endian 16 kHz mono PCM (any size up to the frame cap) go through the
    streaming spotter as `seqapp listen` runs it; back come {"detection": ...} as they happen, {"posteriors":
    [[t, p...]...]} for the plot, and at the end {"done": true, "seconds": audio, "compute_s": time spent}."""
    import queue

    loop = asyncio.get_running_loop()
    out: asyncio.Queue = asyncio.Queue()
    blocks: queue.Queue = queue.Queue(maxsize=64)
    spotter, keywords = models.spotter, [i for i, n in enumerate(models.spotter.names) if not n.startswith("_")]
    kept, compute = [], [0.0]
    state = {"last_plot": -1.0}

    def feed():
        while True:
            block = blocks.get()
            if block is None:
                return
            started = time.perf_counter()
            yield block
            compute[0] += time.perf_counter() - started

    def post(item):  # from the spotter's thread; the loop may be gone when the client has left
        try:
            loop.call_soon_threadsafe(out.put_nowait, item)
        except RuntimeError:
            pass

    def on_detection(d):
        post({"detection": d.as_dict()})

    def on_posteriors(times, probs):
        if times[-1] - state["last_plot"] >= limits.posterior_every_s:
            state["last_plot"] = float(times[-1])
            rows = [[round(float(t), 2), *[round(float(p[k]), 3) for k in keywords]] for t, p in zip(times, probs)]
            post({"posteriors": rows})

    def run():
        try:
            run_spotter(spotter, feed(), on_detection, on_posteriors)
        except Exception as e:  # noqa: BLE001  (reported to the page; the server goes on)
            post({"error": f"the spotter stopped: {e}"})
        finally:
            post(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    sender = asyncio.ensure_future(forward(websocket, out))
    started, samples, closed_by = time.monotonic(), 0, None
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                closed_by = "client"
                break
            if message.get("text") is not None:
                try:
                    ended = json.loads(message["text"][:100]) == {"end": True}
                except json.JSONDecodeError:
                    ended = False
                if ended:
                    break
                raise UserError("send audio as binary 16-bit PCM messages, then {\"end\": true}")
            data = message.get("bytes") or b""
            if len(data) > limits.frame_bytes or len(data) % 2:
                raise UserError(f"an audio message must be whole 16-bit samples, at most {limits.frame_bytes} bytes")
            samples += len(data) // 2
            allowed = (time.monotonic() - started + limits.audio_burst_s) * SAMPLE_RATE * limits.audio_speed
            if samples > allowed:
                raise UserError(f"audio is arriving faster than {limits.audio_speed:g}x real time")
            block = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
            if keep_audio is not None:
                kept.append(np.frombuffer(data, dtype="<i2").copy())
            await asyncio.to_thread(blocks.put, block)
    except UserError as e:
        await out.put({"error": str(e)})
        closed_by = "error"
    finally:
        await asyncio.to_thread(blocks.put, None)
        await asyncio.to_thread(thread.join)
        if keep_audio is not None and kept:
            save_received(keep_audio, np.concatenate(kept))
    if closed_by != "client":
        await out.put({"done": True, "seconds": samples / SAMPLE_RATE, "compute_s": compute[0]})
        await out.put(None)
        await sender
        await close_quietly(websocket, 1000 if closed_by is None else 1003)
    else:
        sender.cancel()


async def close_quietly(websocket: WebSocket, code: int) -> None:
    """Close, unless the client already has."""
    try:
        await websocket.close(code=code)
    except RuntimeError:
        pass


async def forward(websocket: WebSocket, out: asyncio.Queue) -> None:
    """Send what the spotter's thread produced, in order, until the None that ends it."""
    ended = 0
    while True:
        item = await out.get()
        if item is None:
            ended += 1
            if ended == 2:  # the thread's end, then the session's
                return
            continue
        try:
            await websocket.send_json(item)
        except (WebSocketDisconnect, RuntimeError):
            return


def save_received(folder: str, pcm: np.ndarray) -> Path:
    import soundfile as sf

    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    out = path / f"listener_{time.strftime('%Y%m%d-%H%M%S')}_{id(pcm) % 10**6:06d}.wav"
    sf.write(str(out), pcm, SAMPLE_RATE, subtype="PCM_16")
    return out


async def spot_upload(request: Request, models: Models, limits: Limits) -> JSONResponse:
    """POST a WAV/FLAC as the request body: its detections (as `seqapp spot --stream FILE` finds them) and a
    waveform outline for the page, or {"error": one line} with status 400."""
    if models.spotter is None:
        return JSONResponse({"error": "no keyword spotter loaded (serve --kws CHECKPOINT)"}, status_code=400)
    size = request.headers.get("content-length", "0")
    if not size.isdigit():
        return JSONResponse({"error": "a bad Content-Length header"}, status_code=400)
    if int(size) > limits.upload_bytes:
        return JSONResponse({"error": f"the file is over {limits.upload_bytes // 2**20} MB"}, status_code=413)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "upload"
        total = 0
        with path.open("wb") as f:
            async for chunk in request.stream():
                total += len(chunk)
                if total > limits.upload_bytes:
                    return JSONResponse({"error": f"the file is over {limits.upload_bytes // 2**20} MB"},
                                        status_code=413)
                f.write(chunk)
        try:
            result = await asyncio.to_thread(spot_file_at, models, path, limits)
        except UserError as e:
            name = request.headers.get("x-filename", "the file")[:200]
            return JSONResponse({"error": str(e).replace(str(path), name)}, status_code=400)
    return JSONResponse(result)


def spot_file_at(models: Models, path: Path, limits: Limits) -> dict:
    import soundfile as sf

    from ..speech.data.audio import checked_path, readable
    from ..speech.data.sources import FILE_BLOCK_SECONDS, file_blocks

    checked_path(path)
    with readable(path):
        seconds = sf.info(str(path)).duration
    if seconds > limits.upload_seconds:
        raise UserError(f"the file is {seconds / 60:.0f} minutes long: at most {limits.upload_seconds / 60:.0f}")
    outline, detections = [], []

    def blocks():
        for block in file_blocks(path, FILE_BLOCK_SECONDS):
            if len(block):
                peaks = np.abs(block[: len(block) // 160 * 160].reshape(-1, 160)).max(axis=1)
                outline.extend(np.round(peaks, 3).tolist())  # one peak per 10 ms
            yield block

    run_spotter(models.spotter, blocks(), detections.append)
    step = max(1, len(outline) // 4000)
    return {"seconds": len(outline) / 100, "detections": [d.as_dict() for d in detections],
            "outline": outline[::step], "outline_step_s": step / 100, "labels": models.spotter.names}
