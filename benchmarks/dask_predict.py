"""Labelling a CSV on a Dask cluster (``newsclf predict --scheduler``) against ``newsclf predict
--workers 2`` on the same file and the same two cores.

The input is one CSV (``id,title,label``) of the THUCNews train headlines (``headline<TAB>label
id`` lines) repeated to ``--rows`` rows. The cluster is a ``distributed.LocalCluster`` of 2
worker processes of one thread each, started by this script and kept for all runs, as a running
cluster would be; each timed run is a whole ``newsclf predict`` process:

- ``python -m newsclf predict --model DIR --input big.csv --output out.csv --text-column title
  --workers 2 --no-progress``
- ``python -m newsclf predict --model DIR --input big.csv --output parts/ --text-column title
  --scheduler tcp://... --no-progress`` (one CSV part per 5,000 rows)

One untimed warm-up run of each on a small CSV comes first (the cluster's workers then hold the
model, as they would after their first job), then ``--runs`` rounds alternate the two, each
round starting with the next one. Prints, per way, the median wall seconds and rows/s, and
whether the rows written are identical (the parts' rows, in order, against the single file's).
CPU seconds are not shown: the cluster's workers are not children of the timed process. Any
other load on the machine changes the times. Usage:

    python benchmarks/dask_predict.py --model DIR [--rows 100000] [--runs 3]
        [--data ../shared/data/thucnews-headlines] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import pandas as pd

from common import THUCNEWS, measure_process

SINGLE = "newsclf predict --workers 2"
CLUSTER = "newsclf predict --scheduler (LocalCluster, 2 workers x 1 thread)"
TEXT_COLUMN = "title"


def log(message: str) -> None:
    print(f"[dask_predict] {message}", file=sys.stderr, flush=True)


def write_csv(path: Path, source: Path, rows: int) -> None:
    """``rows`` rows of ``id,title,label``: the headlines of ``source`` repeated in order."""
    pairs = [line.rsplit("\t", 1) for line in source.read_text(encoding="utf-8").splitlines()
             if line.strip()]
    n = len(pairs)
    pd.DataFrame({"id": range(rows), TEXT_COLUMN: [pairs[i % n][0] for i in range(rows)],
                  "label": [pairs[i % n][1] for i in range(rows)]}).to_csv(path, index=False)


def commands(model: str, address: str, source: Path, output: Path) -> dict:
    base = [sys.executable, "-m", "newsclf", "predict", "--model", model, "--input", str(source),
            "--text-column", TEXT_COLUMN, "--no-progress"]
    return {SINGLE: base + ["--output", str(output / "single.csv"), "--workers", "2"],
            CLUSTER: base + ["--output", str(output / "parts"), "--scheduler", address]}


def run(name: str, command: list[str], output: Path) -> dict:
    shutil.rmtree(output / "parts", ignore_errors=True)
    (output / "single.csv").unlink(missing_ok=True)
    result = measure_process(command)
    if result["returncode"] != 0:
        sys.exit(f"{name} failed (exit status {result['returncode']}):\n{result['stderr']}")
    return result


def written_rows(output: Path, name: str) -> list[str]:
    """The data rows (header rows dropped) one way wrote, in order."""
    if name == SINGLE:
        return (output / "single.csv").read_text(encoding="utf-8").splitlines()[1:]
    return [row for part in sorted((output / "parts").glob("part-*.csv"))
            for row in part.read_text(encoding="utf-8").splitlines()[1:]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="model directory")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data", type=Path, default=THUCNEWS)
    parser.add_argument("--workdir", type=Path, help="default: a temporary directory")
    args = parser.parse_args()
    try:
        import distributed
    except ImportError:
        sys.exit('needs the dask extra: pip install ".[dask]"')
    if not (args.data / "train.txt").is_file():
        sys.exit(f"THUCNews headlines not found in {args.data} (expected train.txt)")

    with tempfile.TemporaryDirectory() as scratch, \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     dashboard_address=":0",
                                     silence_logs=logging.ERROR) as cluster:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        big, small = workdir / "headlines.csv", workdir / "warm-up.csv"
        log(f"writing {args.rows:,} rows to {big}")
        write_csv(big, args.data / "train.txt", args.rows)
        write_csv(small, args.data / "train.txt", min(args.rows, 2000))
        output = workdir / "out"
        output.mkdir(exist_ok=True)
        address = cluster.scheduler_address
        log(f"cluster at {address}; warm-up runs")
        for name, command in commands(args.model, address, small, output).items():
            run(name, command, output)
        timed = commands(args.model, address, big, output)
        names = list(timed)
        walls = {name: [] for name in names}
        identical = True
        for round_number in range(args.runs):
            order = names[round_number % 2:] + names[:round_number % 2]
            rows = {}
            for name in order:
                walls[name].append(run(name, timed[name], output)["wall_seconds"])
                rows[name] = written_rows(output, name)
                log(f"round {round_number + 1}: {name}: {walls[name][-1]:.1f}s")
            identical = identical and rows[SINGLE] == rows[CLUSTER] \
                and len(rows[SINGLE]) == args.rows

    results = [{"way": name, "wall_seconds": statistics.median(walls[name]),
                "rows_per_second": args.rows / statistics.median(walls[name]),
                "runs": walls[name]} for name in names]
    print(f"| way ({args.rows:,} rows, medians of {args.runs}) | wall s | rows/s |")
    print("| --- | ---: | ---: |")
    for result in results:
        print(f"| {result['way']} | {result['wall_seconds']:.2f} | "
              f"{result['rows_per_second']:,.0f} |")
    print(f"outputs identical: {'yes' if identical else 'NO'}")
    print(json.dumps({"rows": args.rows, "results": results, "identical": identical}, indent=2))


if __name__ == "__main__":
    main()
