"""Labelling a CSV with ``newsclf predict`` against the tools users would pick instead.

Peers, at their best settings, trained once on THUCNews train.txt before any timing (training is
not timed; the models are saved to disk and loaded by each timed run):

- TF-IDF character 1-3-grams + LinearSVC (C=30), the ``tfidf-char-svm`` pipeline of
  newsclf.baseline, saved with joblib;
- fastText on characters (separated by spaces), wordNgrams 3, 25 epochs, lr 1.0, dim 100,
  saved as .bin (``pip install ".[benchmarks]"``; skipped with a note when missing).

The input is one CSV (``id,title,label``, label = class name) holding the dev headlines repeated
to ``--rows`` rows. Each tool runs as a whole process doing read CSV -> predict -> write CSV with
a ``pred_label`` column: ``python -m newsclf predict --model DIR --input ... --output ...
--text-column title --no-progress`` (default settings otherwise, so workers are chosen
automatically; ``--newsclf-args`` adds arguments), and for each peer a small generated pandas
script (read, transform, predict, write). One untimed warm-up run of each tool on a small CSV
comes first, then ``--runs`` rounds alternate the tools, each round starting with the next one.

Per tool, medians over the runs: wall seconds; CPU seconds (user + system of the process and all
the child processes it waited for, from ``os.wait4``); rows/s (rows / wall seconds); peak memory,
the peak of the summed RSS of the process and all its descendants, sampled every 50 ms with psutil
(``pip install psutil``; "n/a" without it; pages shared between processes, such as forked
workers' libraries, count once per process); and the accuracy of the written labels against the
CSV's label column. Then newsclf's wall and CPU seconds divided by each peer's (above 1: newsclf
is slower), and the single-text answer time: ``newsclf predict --model DIR --text "..."`` as a
whole process, median of the runs. Prints a Markdown table and the same as JSON.

``--newsclf-args`` go to the single-text run as well. Any other load on the machine changes both
the wall and the CPU seconds: run it on an otherwise idle machine. Usage:

    python benchmarks/predict_vs_peers.py --model DIR [--rows 100000] [--runs 3]
        [--data ../shared/data/thucnews-headlines] [--workdir DIR] [--newsclf-args="--workers 1"]
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from common import THUCNEWS, load_thucnews, measure_process

from newsclf.baseline import make_baseline

SVM = "tfidf-char-svm"
FASTTEXT = "fasttext-char"
NEWSCLF = "newsclf"
TEXT_COLUMN = "title"
LABEL_COLUMN = "label"
PREDICTED_COLUMN = "pred_label"  # the column newsclf writes; the peer scripts write it too
FASTTEXT_SETTINGS = {"wordNgrams": 3, "epoch": 25, "lr": 1.0, "dim": 100}


def fasttext_line(text: str) -> str:
    """One fastText input line: the characters (whitespace dropped) separated by spaces, ending
    with the newline fastText reads as its end-of-sentence token. ``FastText.predict`` appends
    that newline itself; the binding called here does not, and without it dev accuracy falls
    from 0.890 to 0.799."""
    return " ".join("".join(text.split())) + "\n"


def fasttext_predict(model, texts) -> list[str]:
    """The most likely class of each text. ``FastText.predict`` fails under NumPy 2, so this
    calls the binding under it, which returns (labels, probabilities) for the lines."""
    labels, _ = model.f.multilinePredict([fasttext_line(text) for text in texts], 1, 0.0, "strict")
    return [found[0][len("__label__"):] if found else "" for found in labels]


SVM_SCRIPT = f'''\
"""{SVM}: label a CSV with pandas and a saved scikit-learn pipeline (loading it imports
newsclf.tokenize, whose normalize() is the pipeline's preprocessor)."""
import sys

import joblib
import pandas as pd

model_path, source, output = sys.argv[1:4]
model = joblib.load(model_path)
frame = pd.read_csv(source)
frame["{PREDICTED_COLUMN}"] = model.predict(frame["{TEXT_COLUMN}"].fillna("").astype(str).tolist())
frame.to_csv(output, index=False)
'''

FASTTEXT_SCRIPT = f'''\
"""{FASTTEXT}: label a CSV with pandas and a saved fastText model (the two functions are the
benchmark's own, so training and prediction read the same lines)."""
import sys

import fasttext
import pandas as pd


{inspect.getsource(fasttext_line)}

{inspect.getsource(fasttext_predict)}

model_path, source, output = sys.argv[1:4]
model = fasttext.load_model(model_path)
frame = pd.read_csv(source)
frame["{PREDICTED_COLUMN}"] = fasttext_predict(model, frame["{TEXT_COLUMN}"].fillna("").astype(str))
frame.to_csv(output, index=False)
'''


def log(message: str) -> None:
    print(f"[predict_vs_peers] {message}", file=sys.stderr, flush=True)


def write_csv(path: Path, texts: list[str], labels: list[str], rows: int) -> None:
    """``rows`` rows of ``id,title,label``: the given headlines repeated in order."""
    n = len(texts)
    pd.DataFrame({"id": range(rows), TEXT_COLUMN: [texts[i % n] for i in range(rows)],
                  LABEL_COLUMN: [labels[i % n] for i in range(rows)]}).to_csv(path, index=False)


def train_svm(train_data, path: Path) -> None:
    import joblib

    model = make_baseline(SVM)
    model.fit(list(train_data.texts), list(train_data.labels))
    joblib.dump(model, path)


def train_fasttext(train_data, dev_data, path: Path, workdir: Path) -> float:
    """Train and save the fastText model; return its dev accuracy (through the same binding call
    as the timed script)."""
    import fasttext

    corpus = workdir / "fasttext-train.txt"
    with open(corpus, "w", encoding="utf-8") as handle:
        for text, label in zip(train_data.texts, train_data.labels):
            handle.write(f"__label__{label} {fasttext_line(text)}")
    model = fasttext.train_supervised(str(corpus), verbose=0, **FASTTEXT_SETTINGS)
    model.save_model(str(path))
    predicted = fasttext_predict(model, dev_data.texts)
    return sum(p == gold for p, gold in zip(predicted, dev_data.labels)) / len(dev_data)


def accuracy(output: Path, rows: int) -> float:
    """Share of the written rows whose predicted label equals the label column; a missing row
    counts as wrong."""
    frame = pd.read_csv(output, usecols=[LABEL_COLUMN, PREDICTED_COLUMN], dtype=str,
                        keep_default_na=False)
    if len(frame) != rows:
        log(f"{output.name}: {len(frame)} rows written, expected {rows}")
    return float((frame[LABEL_COLUMN] == frame[PREDICTED_COLUMN]).sum()) / rows


def run(name: str, command: list[str]) -> dict:
    result = measure_process(command)
    if result["returncode"] != 0:
        sys.exit(f"{name} failed (exit status {result['returncode']}): {shlex.join(command)}\n"
                 f"{result['stderr']}")
    return result


def median(values):
    return statistics.median(values) if None not in values else None


def summarize(name: str, runs: list[dict], rows: int) -> dict:
    """Medians of the timed runs of one tool (and every run's figures, for the JSON)."""
    keys = ["wall_seconds", "cpu_seconds", "peak_rss_mib", "accuracy"]
    summary = {"tool": name, **{key: median([r[key] for r in runs]) for key in keys}}
    summary["rows_per_second"] = rows / summary["wall_seconds"]
    summary["runs"] = [{key: r[key] for key in keys} for r in runs]
    return summary


def markdown_table(results: list[dict], rows: int) -> str:
    lines = [f"| tool ({rows:,} rows) | wall s | CPU s | rows/s | peak RSS, process tree (MiB) "
             "| accuracy |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        memory = "n/a" if r["peak_rss_mib"] is None else f"{r['peak_rss_mib']:,.0f}"
        lines.append(f"| {r['tool']} | {r['wall_seconds']:.2f} | {r['cpu_seconds']:.2f} | "
                     f"{r['rows_per_second']:,.0f} | {memory} | {r['accuracy']:.4f} |")
    return "\n".join(lines)


def prepare_peers(train_data, dev_data, workdir: Path) -> tuple[dict, dict]:
    """Train and save the peers and write their scripts: returns each peer's command maker
    (source CSV, output CSV -> argv) and notes for the JSON (training seconds, fastText dev
    accuracy)."""
    commands, notes = {}, {}
    log(f"training {SVM} on {len(train_data)} headlines (not timed)")
    started = time.perf_counter()
    svm_model, svm_script = workdir / f"{SVM}.joblib", workdir / "predict_svm.py"
    train_svm(train_data, svm_model)
    notes[f"{SVM}_train_seconds"] = time.perf_counter() - started
    svm_script.write_text(SVM_SCRIPT, encoding="utf-8")
    commands[SVM] = lambda src, out: [sys.executable, str(svm_script), str(svm_model), str(src),
                                      str(out)]
    if importlib.util.find_spec("fasttext") is None:
        log('fastText not installed (pip install ".[benchmarks]"): skipping it')
        notes["fasttext"] = "not installed"
        return commands, notes
    log(f"training {FASTTEXT} (not timed)")
    started = time.perf_counter()
    fasttext_model, fasttext_script = workdir / f"{FASTTEXT}.bin", workdir / "predict_fasttext.py"
    notes[f"{FASTTEXT}_dev_accuracy"] = train_fasttext(train_data, dev_data, fasttext_model,
                                                       workdir)
    notes[f"{FASTTEXT}_train_seconds"] = time.perf_counter() - started
    log(f"{FASTTEXT} dev accuracy {notes[f'{FASTTEXT}_dev_accuracy']:.4f}")
    fasttext_script.write_text(FASTTEXT_SCRIPT, encoding="utf-8")
    commands[FASTTEXT] = lambda src, out: [sys.executable, str(fasttext_script),
                                           str(fasttext_model), str(src), str(out)]
    return commands, notes


def benchmark(args, workdir: Path) -> None:
    _, train_data, dev_data = load_thucnews(args.data)
    source, warmup_source = workdir / "headlines.csv", workdir / "warmup.csv"
    write_csv(source, dev_data.texts, dev_data.labels, args.rows)
    write_csv(warmup_source, dev_data.texts, dev_data.labels, min(args.rows, 200))
    extra = shlex.split(args.newsclf_args)
    newsclf = [sys.executable, "-m", "newsclf", "predict", "--model", str(args.model)]
    commands = {NEWSCLF: lambda src, out: [*newsclf, "--input", str(src), "--output", str(out),
                                           "--text-column", TEXT_COLUMN, "--no-progress", *extra]}
    peer_commands, notes = prepare_peers(train_data, dev_data, workdir)
    commands.update(peer_commands)
    tools = list(commands)
    single_text = [*newsclf, "--text", dev_data.texts[0], *extra]

    for name in tools:  # untimed: libraries and models into the page cache
        run(name, commands[name](warmup_source, workdir / f"warmup-{name}.csv"))
    run(NEWSCLF, single_text)
    timed = {name: [] for name in tools}
    single_text_runs = []
    for round_ in range(args.runs):
        order = tools[round_ % len(tools):] + tools[:round_ % len(tools)]
        for name in order:
            output = workdir / f"out-{name}.csv"
            result = run(name, commands[name](source, output))
            result["accuracy"] = accuracy(output, args.rows)
            timed[name].append(result)
            log(f"round {round_ + 1}/{args.runs} {name}: {result['wall_seconds']:.2f} s wall, "
                f"{result['cpu_seconds']:.2f} s CPU, accuracy {result['accuracy']:.4f}")
        single_text_runs.append(run(NEWSCLF, single_text))

    results = [summarize(name, timed[name], args.rows) for name in tools]
    ours = results[0]
    ratios = {f"newsclf/{peer['tool']} {kind}": ours[f"{kind}_seconds"] / peer[f"{kind}_seconds"]
              for peer in results[1:] for kind in ("wall", "cpu")}
    single = {"text": dev_data.texts[0], "answer": single_text_runs[-1]["stdout"].strip(),
              "wall_seconds": median([r["wall_seconds"] for r in single_text_runs]),
              "cpu_seconds": median([r["cpu_seconds"] for r in single_text_runs])}

    print(f"THUCNews dev headlines repeated to {args.rows:,} rows, median of {args.runs} run(s), "
          f"newsclf predict {shlex.join(extra) or 'with default settings'}\n")
    print(markdown_table(results, args.rows))
    print()
    for key, value in ratios.items():
        print(f"- {key} seconds: {value:.2f}x")
    print(f"- single text, `newsclf predict --text` as a whole process: "
          f"{single['wall_seconds']:.2f} s wall, {single['cpu_seconds']:.2f} s CPU")
    print(json.dumps({"rows": args.rows, "runs": args.runs, "model": str(args.model),
                      "newsclf_args": extra, "results": results, "ratios": ratios,
                      "single_text": single, **notes}, indent=2, ensure_ascii=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True,
                        help="a trained newsclf model directory")
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the CSV to label")
    parser.add_argument("--runs", type=int, default=3, help="timed rounds (medians are reported)")
    parser.add_argument("--data", type=Path, default=THUCNEWS)
    parser.add_argument("--workdir", type=Path, help="keep the CSVs, peer models and scripts "
                        "here (default: a temporary directory)")
    parser.add_argument("--newsclf-args", default="", help="extra arguments for newsclf "
                        'predict, e.g. --newsclf-args="--workers 1"')
    args = parser.parse_args()
    if args.rows < 1 or args.runs < 1:
        parser.error("--rows and --runs must be at least 1")
    if not args.model.is_dir():
        parser.error(f"--model {args.model}: not a directory")
    if importlib.util.find_spec("psutil") is None:
        log("psutil not installed: no peak memory (pip install psutil)")
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        benchmark(args, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="newsclf-peers-") as workdir:
            benchmark(args, Path(workdir))


if __name__ == "__main__":
    main()
