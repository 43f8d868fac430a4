"""`seqapp serve`: flags in, the page's address out."""
from __future__ import annotations


def register(groups, commands) -> None:
    serve = commands.add_parser("serve", help="a local web page to write (--lm) and listen (--kws)")
    serve.add_argument("--lm", help="a language-model checkpoint (the Write view)")
    serve.add_argument("--kws", help="a streaming spotter or listening bundle, or an exported one (.onnx), for the "
                       "Listen and File views (default: the listening spotter that ships with seqapp)")
    serve.add_argument("--false-alarms-per-hour", type=float, help="the spotter's calibrated operating point")
    serve.add_argument("--threshold", type=float, help="the spotter's decision threshold (as spot --threshold)")
    serve.add_argument("--host", default="127.0.0.1", help="the address to bind (default: this machine only)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--max-connections", type=int, default=16, help="connections at once (pages writing or listening, uploads)")
    serve.add_argument("--keep-audio", help="a folder: each listener's received audio is saved there as WAV")
    serve.set_defaults(handler=serve_command)


def serve_command(args) -> None:
    import socket
    import sys

    import uvicorn

    from ..errors import UserError, positive
    from .app import create_app
    from .models import Limits, Models

    positive("--max-connections", args.max_connections)
    if not 0 < args.port < 65536:
        raise UserError(f"--port must be in 1-65535, got {args.port}")
    models = Models(args.lm, args.kws, args.false_alarms_per_hour, args.threshold)
    app = create_app(models, Limits(connections=args.max_connections), args.keep_audio)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"note: bound to {args.host}: the page is reachable from the network, by anyone who can reach "
              "this machine", file=sys.stderr)
    print(f"seqapp serve: http://{'127.0.0.1' if args.host == '0.0.0.0' else args.host}:{args.port}/  "
          f"(Ctrl-C to stop)", file=sys.stderr, flush=True)
    try:  # uvicorn reports a taken port in a log line and exits: say it as every error is said
        with socket.create_server((args.host, args.port)):
            pass
    except OSError as e:
        raise UserError(f"cannot listen on {args.host}:{args.port} ({e.strerror or e})") from None
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", ws_max_size=Limits.frame_bytes)
