"""seqapp serve, in process: the page and its API over HTTP and WebSocket (Starlette's test client), with a tiny
language model and a tiny streaming spotter: writing gives `seqapp generate`'s text, listening and files give
`seqapp spot --stream`'s detections, and every bad request is one line that closes only its own connection."""
import json
import numpy as np
import pytest
import soundfile as sf

from conftest import run_main

pytest.importorskip("starlette")
from starlette.testclient import TestClient  # noqa: E402

from seqapp.serve.app import create_app  # noqa: E402
from seqapp.serve.models import Limits, Models  # noqa: E402

THRESHOLD = "0.1"  # low: a spotter of 40 steps on tones fires at all


def client_for(served, **limits):
    """A test client; audio may arrive as fast as the test sends it unless a test says otherwise."""
    models = Models(str(served.lm), str(served.kws), threshold=float(THRESHOLD))
    return TestClient(create_app(models, Limits(**{"audio_speed": 1e6, **limits})))


def cli_detections(served, wav) -> list[dict]:
    spot = run_main("spot", "--checkpoint", served.kws, "--stream", wav, "--threshold", THRESHOLD, "--json")
    assert spot.returncode == 0, spot.stderr
    return [json.loads(line) for line in spot.stdout.splitlines()]


def pcm16(served) -> np.ndarray:
    return sf.read(served.wav, dtype="int16")[0]


def listen(ws, samples: np.ndarray, chunk: int = 640) -> list[dict]:
    for i in range(0, len(samples), chunk):
        ws.send_bytes(samples[i: i + chunk].astype("<i2").tobytes())
    ws.send_text('{"end": true}')
    messages = []
    while True:
        m = ws.receive_json()
        messages.append(m)
        if m.get("done") or m.get("error"):
            return messages


def test_the_page_and_its_static_files_are_served_offline(served):
    with client_for(served) as client:
        page = client.get("/")
        assert page.status_code == 200 and "/static/app.js" in page.text and "http" not in page.text.replace(
            'http-equiv', '')
        for name in ("app.js", "worklet.js", "style.css"):
            assert client.get(f"/static/{name}").status_code == 200
        assert client.get("/static/../app.py").status_code == 404     # no way out of the static folder
        info = client.get("/api/info").json()
        assert info["kws"]["keywords"] == ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
        assert info["lm"]["checkpoint"] == "best.pt"


def test_writing_streams_the_text_seqapp_generate_gives_for_the_seed(served):
    flags = {"prompt": "First", "length": 60, "temperature": 0.9, "top_k": 20, "seed": 7}
    with client_for(served) as client, client.websocket_connect("/ws/write") as ws:
        ws.send_json(flags)
        pieces = []
        while True:
            m = ws.receive_json()
            if "done" in m:
                break
            pieces.append(m["text"])
        assert len(pieces) > 1 and m["chars"] == len("".join(pieces)) and m["chars_per_s"] > 0
        ws.send_json({**flags, "temperature": -1})                     # a bad request: one line, the socket stays
        assert "temperature" in ws.receive_json()["error"]
        ws.send_json({**flags, "length": 10**6})
        assert "length" in ws.receive_json()["error"]
    cli = run_main("generate", "--checkpoint", served.lm, "--prompt", "First", "--length", "60", "--temperature",
                   "0.9", "--top-k", "20", "--seed", "7")
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout == "First" + "".join(pieces) + "\n"


def test_a_stop_ends_the_generation_early(served):
    with client_for(served) as client, client.websocket_connect("/ws/write") as ws:
        ws.send_json({"prompt": "A", "length": 5000, "seed": 1})
        ws.receive_json()
        ws.send_json({"stop": True})
        while "done" not in (m := ws.receive_json()):
            pass
        assert m["stopped"] and m["chars"] < 5000


def test_listening_finds_what_spot_stream_finds_on_the_same_samples(served):
    samples = pcm16(served)
    with client_for(served) as client, client.websocket_connect("/ws/listen") as ws:
        messages = listen(ws, samples)
    detections = [m["detection"] for m in messages if "detection" in m]
    assert detections == cli_detections(served, served.wav) and detections
    plots = [row for m in messages if "posteriors" in m for row in m["posteriors"]]
    assert plots and all(len(row) == 11 for row in plots)              # time, then one posterior per keyword
    done = messages[-1]
    assert done["done"] and done["seconds"] == pytest.approx(len(samples) / 16000)


def test_a_bad_frame_closes_only_its_connection_and_state_is_freed(served):
    from starlette.websockets import WebSocketDisconnect

    with client_for(served) as client:
        gate = client.app.state.gate
        with client.websocket_connect("/ws/listen") as bad, client.websocket_connect("/ws/listen") as good:
            bad.send_bytes(b"\x01\x02\x03")                            # not whole 16-bit samples
            assert "16-bit" in bad.receive_json()["error"]
            messages = listen(good, pcm16(served)[: 16000 * 5])
            assert messages[-1].get("done")
        with client.websocket_connect("/ws/listen") as gone:           # a client that leaves mid-stream
            gone.send_bytes(pcm16(served)[:16000].tobytes())
        client.get("/api/info")
        import time
        for _ in range(50):
            if gate.open == 0:
                break
            time.sleep(0.1)
        assert gate.open == 0
        with client.websocket_connect("/ws/listen", headers={"origin": "http://evil.example"}) as ws:
            assert "origin" in ws.receive_json()["error"]
            with pytest.raises(WebSocketDisconnect):
                ws.receive_json()


def test_caps_on_connections_and_audio_rate(served):
    with client_for(served, connections=1) as client:
        with client.websocket_connect("/ws/listen"):
            with client.websocket_connect("/ws/write") as second:
                assert "too many connections" in second.receive_json()["error"]
            upload = client.post("/api/spot", content=served.wav.read_bytes())  # an upload counts too
            assert upload.status_code == 503 and "too many connections" in upload.json()["error"]
    with client_for(served, audio_speed=1.0, audio_burst_s=0.5) as client, client.websocket_connect("/ws/listen") as ws:
        messages = listen(ws, pcm16(served))                           # 18 s of audio at once
        assert "faster than" in messages[-1]["error"]


def test_a_file_gives_the_clis_detections_and_bad_files_one_line(served, tmp_path):
    with client_for(served, upload_bytes=2 * 2**20) as client:
        r = client.post("/api/spot", content=served.wav.read_bytes(), headers={"x-filename": "test.wav"})
        assert r.status_code == 200, r.text
        result = r.json()
        assert result["detections"] == cli_detections(served, served.wav)
        assert result["seconds"] == pytest.approx(18, abs=0.5) and len(result["outline"]) > 100
        bad = client.post("/api/spot", content=b"RIFF not really a wav" * 10, headers={"x-filename": "junk.wav"})
        assert bad.status_code == 400 and "junk.wav" in bad.json()["error"] and "\n" not in bad.json()["error"]
        big = client.post("/api/spot", content=b"\0" * (3 * 2**20))
        assert big.status_code == 413 and "MB" in big.json()["error"]


def test_serve_refuses_bad_flags_in_one_line(served, monkeypatch):
    from conftest import assert_one_line_error
    from seqapp.speech.listening import runtime

    monkeypatch.setattr(runtime, "BUNDLED", served.tmp / "no_bundled_spotter.onnx")  # else serve listens with it
    assert_one_line_error(run_main("serve"), "--lm", "--kws")
    assert_one_line_error(run_main("serve", "--kws", served.lm), "kws")
    assert_one_line_error(run_main("serve", "--lm", served.lm, "--port", "70000"), "--port")


def test_an_exported_spotter_serves_the_detections_spot_stream_gives_it(served, tmp_path):
    onnx = tmp_path / "spotter.onnx"
    assert run_main("export", "--checkpoint", served.kws, "--out", onnx).returncode == 0
    spot = run_main("spot", "--checkpoint", onnx, "--stream", served.wav, "--threshold", THRESHOLD, "--json")
    expected = [json.loads(line) for line in spot.stdout.splitlines()]
    models = Models(None, str(onnx), threshold=float(THRESHOLD))
    with TestClient(create_app(models, Limits(audio_speed=1e6, upload_bytes=2 * 2**20))) as client:
        r = client.post("/api/spot", content=served.wav.read_bytes(), headers={"x-filename": "test.wav"})
        assert r.status_code == 200 and r.json()["detections"] == expected and expected
        with client.websocket_connect("/ws/listen") as ws:
            messages = listen(ws, pcm16(served))
    assert [m["detection"] for m in messages if "detection" in m] == expected
    assert any("posteriors" in m for m in messages)
