"""newsclf serve: an HTTP JSON service labelling texts with a trained model (FastAPI + uvicorn,
the ``serve`` extra)."""

from __future__ import annotations

import argparse
import errno
import os
import socket
from importlib.util import find_spec

from newsclf.cli.common import add_model_option
from newsclf.errors import NewsclfError
from newsclf.spec import (BACKENDS, SERVE_MAX_CHARS, SERVE_MAX_TEXTS, SERVE_MAX_WAIT_MS,
                          SERVE_MAX_WINDOWS)

# uvicorn waits this long for requests in progress once asked to stop
GRACEFUL_SECONDS = 10
BACKLOG = 2048


def add_parser(commands) -> argparse.ArgumentParser:
    serve = commands.add_parser(
        "serve", help="serve a model over HTTP (JSON; POST /predict)",
        description="Serve a trained model as an HTTP JSON service: POST /predict with "
                    '{"texts": [...], "top_k": K}; GET /health, /info; OpenAPI docs at /docs. '
                    "Concurrent requests are batched into shared model calls. Listens on "
                    "loopback by default: put a reverse proxy in front for TLS and access "
                    'control. Needs the serve extra: pip install "newsclf[serve]".')
    add_model_option(serve)
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default: 127.0.0.1, this machine only)")
    serve.add_argument("--port", type=int, default=8000,
                       help="port to listen on (default: 8000; 0 picks a free one)")
    serve.add_argument("--max-texts", type=int, default=SERVE_MAX_TEXTS, metavar="N",
                       help=f"most texts in one request (default: {SERVE_MAX_TEXTS})")
    serve.add_argument("--max-chars", type=int, default=SERVE_MAX_CHARS, metavar="N",
                       help=f"most characters in one text (default: {SERVE_MAX_CHARS})")
    serve.add_argument("--max-windows", type=int, default=SERVE_MAX_WINDOWS, metavar="N",
                       help="most windows of max_len positions one request may take to read: "
                            "a text is one, or with long_text chunk one per max_len "
                            f"characters (default: {SERVE_MAX_WINDOWS})")
    serve.add_argument("--batch-wait-ms", type=float, default=SERVE_MAX_WAIT_MS, metavar="MS",
                       help="how long a request waits for others to share its model call "
                            f"(default: {SERVE_MAX_WAIT_MS:g})")
    serve.add_argument("--backend", choices=BACKENDS, default="auto",
                       help="what runs the model (as for predict; default: auto)")
    serve.add_argument("--threads", type=int, metavar="N",
                       help="CPU threads of the model (default: the cores less one, 1 to 4)")
    serve.add_argument("--access-log", action="store_true",
                       help="log every request on stderr")
    return serve


def run(args: argparse.Namespace) -> None:
    if find_spec("fastapi") is None or find_spec("uvicorn") is None:
        raise NewsclfError('serve needs FastAPI and uvicorn: pip install "newsclf[serve]"')
    for option, value in (("--max-texts", args.max_texts), ("--max-chars", args.max_chars),
                          ("--max-windows", args.max_windows)):
        if value < 1:
            raise NewsclfError(f"{option} must be at least 1, got {value}")
    if args.threads is not None and args.threads < 1:
        raise NewsclfError(f"--threads must be at least 1, got {args.threads}")
    if not 0 <= args.port <= 65535:
        raise NewsclfError(f"--port must be between 0 and 65535, got {args.port}")
    if not 0 <= args.batch_wait_ms <= 1000:
        raise NewsclfError(f"--batch-wait-ms must be between 0 and 1000, got {args.batch_wait_ms}")

    import uvicorn

    from newsclf.serve import create_app

    app = create_app(args.model, max_texts=args.max_texts, max_chars=args.max_chars,
                     max_windows=args.max_windows,
                     max_wait_ms=args.batch_wait_ms, backend=args.backend, threads=args.threads)
    predictor = app.state.served.predictor
    listening = _listen(args.host, args.port)
    host, port = listening.getsockname()[:2]
    url_host = f"[{host}]" if ":" in host else host
    print(f"newsclf serve: {args.model} ({len(predictor.classes_)} classes, {predictor.backend}) "
          f"listening on http://{url_host}:{port} (docs: /docs); Ctrl-C stops it", flush=True)
    server = _stopping_server_class()(uvicorn.Config(
        app, log_level="warning", access_log=args.access_log, lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SECONDS))
    # uvicorn handles SIGINT and SIGTERM while it serves (finishing requests in progress), then
    # raises the signal again with newsclf's handlers back, so the command ends as any other
    server.run(sockets=[listening])
    if not server.started:
        raise NewsclfError(f"the server on http://{url_host}:{port} did not start (see above)")


def _stopping_server_class():
    import uvicorn

    class StoppingServer(uvicorn.Server):
        """uvicorn's server, which also tells the app's batcher to answer what is waiting at
        once when a signal asks it to stop: the requests in progress then end within one model
        call, not after a long request's last window."""

        def handle_exit(self, sig, frame) -> None:
            self.config.app.state.batcher.stop_soon()
            super().handle_exit(sig, frame)

    return StoppingServer


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port`` (bound here, so a taken port is one clear line)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP,
            flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise NewsclfError(f"--host {host}: not an address of this machine ({exc.strerror})") \
            from None
    # proto given explicitly: asyncio turns off Nagle's algorithm (40 ms stalls on keep-alive
    # connections) only on sockets whose proto is IPPROTO_TCP
    listening = socket.socket(family, kind, proto)
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(address)
        listening.listen(BACKLOG)
    except OSError as exc:
        listening.close()
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        hint = "; choose another --port" if exc.errno == errno.EADDRINUSE else ""
        raise NewsclfError(f"cannot listen on {host}:{port}: {reason}{hint}") from None
    return listening
