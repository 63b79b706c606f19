"""Load on ``newsclf serve``: throughput and latency of the HTTP service under concurrent
clients, next to ``Predictor.predict`` in-process on the same texts.

Starts ``newsclf serve --model DIR --port 0`` on 127.0.0.1 itself (``--serve-args`` adds
options), waits until it listens, sends a few untimed warm-up requests, then two phases, each
``--requests`` POST /predict requests from ``--clients`` concurrent clients (asyncio, one
keep-alive connection each, a minimal HTTP/1.1 client): requests of 1 text, then of ``--batch``
texts. Texts are real headlines, taken in order and repeated: the THUCNews dev headlines
(``headline<TAB>label_id``) from ``../shared/data/thucnews-headlines/dev.txt`` beside the
project when present, else ``data/sample/dev.tsv`` (``--data`` picks another file; the text is
its first tab-separated field). Per phase: requests/s, texts/s, p50 and p99 latency, errors (a
status other than 200 or the wrong number of predictions; there must be none) and the model
calls the server made (from ``/info``: how well concurrent requests were batched). The server
is stopped at the end.

Then ``Predictor.predict`` in this process, on the same texts, with the server's thread count:
``--requests`` calls of 1 text and of ``--batch`` texts (texts/s), the ceiling the service
approaches. The clients share the machine with the server: on few cores they take a share of
the CPU the service could use. Exit status 1 if any request failed. Usage:

    python benchmarks/serve_load.py --model DIR [--clients 16] [--requests 2000] [--batch 32]
        [--data FILE] [--serve-args="--batch-wait-ms 5"]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import select
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import urlopen

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
THUCNEWS_DEV = ROOT.parent / "shared/data/thucnews-headlines/dev.txt"
SAMPLE_DEV = ROOT / "data/sample/dev.tsv"
WARM_UP_REQUESTS = 20


def log(message: str) -> None:
    print(f"[serve_load] {message}", file=sys.stderr, flush=True)


def read_headlines(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    texts = [line.split("\t")[0].strip() for line in lines]
    return [text for text in texts if text]


def start_server(model: Path, extra: list[str]) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "newsclf", "serve", "--model", str(model), "--port", "0", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    ready, _, _ = select.select([process.stdout], [], [], 120)
    line = process.stdout.readline() if ready else ""
    found = re.search(r"listening on (http://\S+) ", line)
    if not found:
        stop_server(process)
        sys.exit(f"newsclf serve did not start: {line.strip()} {process.stderr.read().strip()}")
    log(line.strip())
    return process, found.group(1)


def stop_server(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.communicate(timeout=30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()


class Connection:
    """One keep-alive HTTP/1.1 connection speaking just enough of the protocol to POST JSON and
    read the answer: a general client (httpx) costs more CPU per request than the server, and
    the benchmark would measure it instead."""

    def __init__(self, url: str):
        address = urlsplit(url)
        self.host, self.port = address.hostname, address.port
        self.reader = self.writer = None

    async def post(self, path: str, payload: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        try:
            self.writer.write(b"POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json"
                              b"\r\nContent-Length: %d\r\n\r\n%s" % (
                                  path.encode(), self.host.encode(), self.port, len(payload),
                                  payload))
            await self.writer.drain()
            head = await self.reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = next((int(line.partition(b":")[2]) for line in head.split(b"\r\n")[1:]
                           if line.partition(b":")[0].strip().lower() == b"content-length"), None)
            if length is None:
                raise ValueError("an answer without Content-Length")
            return status, await self.reader.readexactly(length)
        except BaseException:
            await self.close()  # a broken exchange leaves the connection unusable
            raise

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


async def load(url: str, bodies: list[dict], clients: int) -> dict:
    """Send every body from ``clients`` concurrent clients, one connection each; latencies and
    errors."""
    payloads = [json.dumps(body, ensure_ascii=False).encode("utf-8") for body in bodies]
    latencies, errors, next_body = [], [], iter(range(len(bodies)))

    async def client_loop() -> None:
        connection = Connection(url)
        for i in next_body:  # shared: each body is sent once
            started = time.perf_counter()
            try:
                status, answer = await connection.post("/predict", payloads[i])
                ok = (status == 200
                      and len(json.loads(answer)["predictions"]) == len(bodies[i]["texts"]))
                problem = None if ok else f"HTTP {status}: {answer[:200]!r}"
            except (OSError, asyncio.IncompleteReadError, ValueError, KeyError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            latencies.append(time.perf_counter() - started)
            if problem:
                errors.append(problem)
        await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client_loop() for _ in range(clients)))
    return {"seconds": time.perf_counter() - started, "latencies": latencies, "errors": errors}


def server_info(url: str) -> dict:
    with urlopen(url + "/info", timeout=30) as answer:
        return json.load(answer)


def http_phase(url: str, texts: list[str], per_request: int, requests: int,
               clients: int) -> dict:
    bodies = [{"texts": [texts[(i * per_request + j) % len(texts)] for j in range(per_request)]}
              for i in range(requests)]
    before = server_info(url)["stats"]
    result = asyncio.run(load(url, bodies, clients))
    after = server_info(url)["stats"]
    latencies = np.array(result["latencies"]) * 1000
    calls = after["model_calls"] - before["model_calls"]
    for problem in result["errors"][:5]:
        log(f"error: {problem}")
    return {"phase": f"HTTP, {per_request} text{'s' if per_request > 1 else ''} per request",
            "requests": requests, "texts_per_request": per_request,
            "requests_per_second": requests / result["seconds"],
            "texts_per_second": requests * per_request / result["seconds"],
            "p50_ms": float(np.percentile(latencies, 50)),
            "p99_ms": float(np.percentile(latencies, 99)), "errors": len(result["errors"]),
            "model_calls": calls,
            "texts_per_model_call": (after["texts"] - before["texts"]) / calls if calls else None}


def in_process_phase(predictor, texts: list[str], per_call: int, calls: int) -> dict:
    batches = [[texts[(i * per_call + j) % len(texts)] for j in range(per_call)]
               for i in range(calls)]
    latencies = []
    started = time.perf_counter()
    for batch in batches:
        call_started = time.perf_counter()
        predictor.predict(batch)
        latencies.append(time.perf_counter() - call_started)
    seconds = time.perf_counter() - started
    latencies = np.array(latencies) * 1000
    return {"phase": f"Predictor.predict in-process, batch {per_call}", "requests": calls,
            "texts_per_request": per_call, "requests_per_second": calls / seconds,
            "texts_per_second": calls * per_call / seconds,
            "p50_ms": float(np.percentile(latencies, 50)),
            "p99_ms": float(np.percentile(latencies, 99)), "errors": 0, "model_calls": calls,
            "texts_per_model_call": per_call}


def table(rows: list[dict]) -> str:
    lines = ["| phase | requests | requests/s | texts/s | p50 ms | p99 ms | errors | texts per "
             "model call |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in rows:
        per_call = row["texts_per_model_call"]
        lines.append(f"| {row['phase']} | {row['requests']:,} | {row['requests_per_second']:,.0f}"
                     f" | {row['texts_per_second']:,.0f} | {row['p50_ms']:.1f} | "
                     f"{row['p99_ms']:.1f} | {row['errors']} | "
                     f"{'n/a' if per_call is None else f'{per_call:.1f}'} |")
    return "\n".join(lines)


def benchmark(args: argparse.Namespace) -> int:
    texts = read_headlines(args.data)
    log(f"{len(texts):,} headlines from {args.data}")
    extra = shlex.split(args.serve_args)
    process, url = start_server(args.model, extra)
    try:
        info = server_info(url)
        asyncio.run(load(url, [{"texts": [text]} for text in texts[:WARM_UP_REQUESTS]],
                         args.clients))
        rows = []
        for per_request in (1, args.batch):
            log(f"{args.requests:,} requests of {per_request} text(s), {args.clients} clients")
            rows.append(http_phase(url, texts, per_request, args.requests, args.clients))
    finally:
        stop_server(process)

    from newsclf import Predictor
    from newsclf.runtime import tune_allocator
    from newsclf.serve import default_threads

    tune_allocator()  # as in the server process (the newsclf command)
    threads = next((int(value) for option, value in zip(extra, extra[1:])
                    if option == "--threads"), default_threads())
    predictor = Predictor.from_dir(args.model, threads=threads)
    predictor.predict(texts[:WARM_UP_REQUESTS])
    for per_call in (1, args.batch):
        log(f"Predictor.predict in-process: {args.requests:,} calls of {per_call} text(s)")
        rows.append(in_process_phase(predictor, texts, per_call, args.requests))

    print(f"newsclf serve on 127.0.0.1, {args.clients} concurrent clients, {args.requests:,} "
          f"requests per phase, backend {info['backend']}, ensemble of {info['ensemble_size']}, "
          f"{threads} model thread(s), {os.cpu_count()} cores, "
          f"server options: {shlex.join(extra) or 'defaults'}\n")
    print(table(rows))
    print(json.dumps({"model": str(args.model), "data": str(args.data), "clients": args.clients,
                      "serve_args": extra, "backend": info["backend"], "threads": threads,
                      "results": rows}, indent=2, ensure_ascii=False))
    failed = sum(row["errors"] for row in rows)
    if failed:
        log(f"{failed} request(s) failed")
    return 1 if failed else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True,
                        help="a trained newsclf model directory")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--requests", type=int, default=2000, help="requests per phase")
    parser.add_argument("--batch", type=int, default=32,
                        help="texts per request in the second phase")
    parser.add_argument("--data", type=Path,
                        default=THUCNEWS_DEV if THUCNEWS_DEV.is_file() else SAMPLE_DEV,
                        help="headlines, one per line, text first (default: THUCNews dev when "
                             "beside the project, else data/sample/dev.tsv)")
    parser.add_argument("--serve-args", default="",
                        help='extra options for newsclf serve, e.g. --serve-args="--threads 1"')
    args = parser.parse_args()
    if min(args.clients, args.requests, args.batch) < 1:
        parser.error("--clients, --requests and --batch must be at least 1")
    if not args.model.is_dir():
        parser.error(f"--model {args.model}: not a directory")
    if not args.data.is_file():
        parser.error(f"--data {args.data}: not a file")
    sys.exit(benchmark(args))


if __name__ == "__main__":
    main()
