"""The server: routes, the origin check and the connection cap over the models (models.py) and each connection's
session (sessions.py). Every limit a client could push on is capped, and each breach is one line the page shows."""
from __future__ import annotations

import threading
from pathlib import Path
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from .models import Limits, Models
from .sessions import listener_session, spot_upload, writer_session

STATIC = Path(__file__).parent / "static"


def origin_ok(websocket: WebSocket) -> bool:
    """A browser page from another site may not open our sockets: its Origin must name this server's host."""
    origin = websocket.headers.get("origin")
    if origin is None:  # not a browser (a script on this machine): nothing to forge
        return True
    return urlsplit(origin).netloc == websocket.headers.get("host", "")


class Gate:
    """Counts the open WebSocket connections, refusing one over the cap."""

    def __init__(self, cap: int):
        self.cap, self.open, self.lock = cap, 0, threading.Lock()

    def enter(self) -> bool:
        with self.lock:
            if self.open >= self.cap:
                return False
            self.open += 1
            return True

    def leave(self) -> None:
        with self.lock:
            self.open -= 1


async def refuse(websocket: WebSocket, message: str) -> None:
    await websocket.accept()
    await websocket.send_json({"error": message})
    await websocket.close(code=1008)


def create_app(models: Models, limits: Limits | None = None, keep_audio: str | None = None) -> Starlette:
    """The app. With `keep_audio` (a folder), each listener's received audio is written there as WAV when it
    closes, so what the page heard can be checked against the CLI (the browser tests do)."""
    limits = limits or Limits()
    gate = Gate(limits.connections)
    busy = f"too many connections (at most {limits.connections})"

    async def index(request: Request):
        return FileResponse(STATIC / "index.html")

    async def info(request: Request):
        return JSONResponse({**models.info(), "limits": limits.__dict__})

    async def spot_file(request: Request):
        if not gate.enter():  # an upload holds a thread while it is spotted: it counts as a connection
            return JSONResponse({"error": busy}, status_code=503)
        try:
            return await spot_upload(request, models, limits)
        finally:
            gate.leave()

    async def page_session(websocket: WebSocket, model, missing: str, run) -> None:
        """A writer or listener: refused with one message unless its origin, its model and a free slot allow
        it; the slot is freed however the session ends."""
        if not origin_ok(websocket):
            return await refuse(websocket, "this page's origin may not use the server")
        if model is None:
            return await refuse(websocket, missing)
        if not gate.enter():
            return await refuse(websocket, busy)
        try:
            await websocket.accept()
            await run()
        finally:
            gate.leave()

    async def write(websocket: WebSocket):
        await page_session(websocket, models.lm, "no language model loaded (serve --lm CHECKPOINT)",
                           lambda: writer_session(websocket, models, limits))

    async def listen(websocket: WebSocket):
        await page_session(websocket, models.spotter, "no keyword spotter loaded (serve --kws CHECKPOINT)",
                           lambda: listener_session(websocket, models, limits, keep_audio))

    routes = [Route("/", index), Route("/api/info", info), Route("/api/spot", spot_file, methods=["POST"]),
              WebSocketRoute("/ws/write", write), WebSocketRoute("/ws/listen", listen),
              Mount("/static", StaticFiles(directory=STATIC), name="static")]
    app = Starlette(routes=routes)
    app.state.gate = gate
    return app
