"""Prediction throughput of newsclf on THUCNews dev headlines, end to end and by stage.

Prints, in one run: jieba tokenization alone (the ceiling for word-level models), newsclf
tokenization + encoding, model-only inference, end-to-end ``newsclf predict`` on a CSV with
``--workers 1`` and ``--workers 2``, and peak resident memory of a run over a large CSV
(``--big-rows``, default 100,000). Usage:

    python benchmarks/predict_throughput.py --model DIR [--data ../shared/data/thucnews-headlines]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from common import THUCNEWS, load_thucnews

from newsclf import Predictor
from newsclf.runtime import tune_allocator


def rate(rows: int, seconds: float) -> float:
    return rows / seconds if seconds > 0 else float("inf")


def timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - started


def run_predict(model: Path, source: Path, output: Path, *extra: str) -> dict:
    """``newsclf predict`` in a child process: wall seconds and the child's peak RSS (MiB)."""
    command = [sys.executable, "-m", "newsclf", "predict", "--model", str(model), "--input",
               str(source), "--output", str(output), "--no-progress", *extra]
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(command, stderr=errors, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            raise SystemExit(f"newsclf predict failed: {errors.read()[-2000:]}")
    return {"seconds": seconds, "peak_rss_mib": usage.ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="a trained model directory")
    parser.add_argument("--data", type=Path, default=THUCNEWS)
    parser.add_argument("--big-rows", type=int, default=100_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    tune_allocator()  # as the newsclf command does, so figures match it
    texts = load_thucnews(args.data)[2].texts
    n = len(texts)
    predictor = Predictor.from_dir(args.model)
    predictor.predict(texts[:256])  # warm up jieba and the model

    results = {"rows": n, "model": str(args.model), "tokenizer": predictor.spec.tokenizer}
    _, seconds = timed(lambda: [predictor.tokenizer.words(t) for t in texts])
    results["jieba_rows_per_second"] = rate(n, seconds)
    encoded, seconds = timed(predictor.encode, texts)
    results["tokenize_encode_rows_per_second"] = rate(n, seconds)
    from newsclf.model.inference import predict_scores

    predict_scores(predictor._forward, encoded, 256)  # first pass builds kernels per shape
    _, seconds = timed(predict_scores, predictor._forward, encoded, 256)
    results[f"model_only_{predictor.backend}_rows_per_second"] = rate(n, seconds)
    _, seconds = timed(predictor.predict_proba, texts)
    results["predict_proba_rows_per_second"] = rate(n, seconds)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = tmp / "dev.csv"
        pd.DataFrame({"id": range(n), "text": texts}).to_csv(source, index=False)
        for workers in args.workers:
            run = run_predict(args.model, source, tmp / f"out{workers}.csv", "--workers", str(workers))
            results[f"end_to_end_workers{workers}_rows_per_second"] = rate(n, run["seconds"])
            results[f"end_to_end_workers{workers}_peak_rss_mib"] = run["peak_rss_mib"]
        outputs = [(tmp / f"out{w}.csv").read_bytes() for w in args.workers]
        results["workers_outputs_identical"] = all(o == outputs[0] for o in outputs)

        big = tmp / "big.csv"
        repeats = -(-args.big_rows // n)
        pd.DataFrame({"id": range(args.big_rows),
                      "text": [texts[i % n] for i in range(args.big_rows)]}).to_csv(big, index=False)
        results.update({"big_rows": args.big_rows, "big_repeats_of_dev": repeats})
        for workers in args.workers:
            out = tmp / f"big_out{workers}.csv"
            run = run_predict(args.model, big, out, "--workers", str(workers))
            results[f"big_workers{workers}_rows_out"] = len(pd.read_csv(out, usecols=["id"]))
            results[f"big_workers{workers}_rows_per_second"] = rate(args.big_rows, run["seconds"])
            results[f"big_workers{workers}_peak_rss_mib"] = run["peak_rss_mib"]

    print(f"{'stage':<34} {'rows/s':>10}")
    for key, value in results.items():
        if key.endswith("rows_per_second"):
            print(f"{key.replace('_rows_per_second', ''):<34} {value:>10.0f}")
    for workers in args.workers:
        print(f"peak RSS (largest process), workers {workers}: {n} rows "
              f"{results[f'end_to_end_workers{workers}_peak_rss_mib']:.0f} MiB, {args.big_rows} rows "
              f"{results[f'big_workers{workers}_peak_rss_mib']:.0f} MiB "
              f"({results[f'big_workers{workers}_rows_out']} rows out)")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
