"""Shared pieces of the THUCNews benchmarks: loading the split, timing newsclf, measuring a
command as a whole process tree, printing tables."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from newsclf import Predictor, TrainConfig
from newsclf.data import read_class_names, read_labelled
from newsclf.training import train

ROOT = Path(__file__).resolve().parents[1]
THUCNEWS = ROOT.parent / "shared/data/thucnews-headlines"


def load_thucnews(directory: Path = THUCNEWS):
    if not (directory / "train.txt").is_file():
        sys.exit(f"THUCNews headlines not found in {directory} (expected train.txt, dev.txt, class.txt)")
    classes = read_class_names(directory / "class.txt")
    return (classes, read_labelled(directory / "train.txt", classes),
            read_labelled(directory / "dev.txt", classes))


def run_newsclf(config: TrainConfig, classes, train_data, dev_data, output: Path,
                name: str = "newsclf", unlabeled_texts=None) -> dict:
    """Train (timed, including tokenization, vocabulary and the inference export), then time
    prediction of the dev texts end to end (tokenization + model)."""
    started = time.perf_counter()
    result = train(config, train_data, dev_data, output, classes, progress=False,
                   log=lambda message: print(f"[{name}] {message}", file=sys.stderr, flush=True),
                   unlabeled_texts=unlabeled_texts)
    train_seconds = time.perf_counter() - started
    predictor = Predictor.from_dir(output)
    predictor.predict(dev_data.texts[:256])
    started = time.perf_counter()
    predictor.predict(dev_data.texts)
    return {"model": name, "dev_accuracy": result.metrics["dev_accuracy"],
            "dev_macro_f1": result.metrics["dev_macro_f1"], "train_seconds": train_seconds,
            "predict_rows_per_second": len(dev_data) / (time.perf_counter() - started),
            "best_epoch": result.metrics.get("best_epoch") or
            [member["best_epoch"] for member in result.metrics["members"]], "seed": config.seed,
            "ensemble_dev_accuracy": result.metrics.get("teacher", {}).get("dev_accuracy"),
            "pretrained_teacher": result.metrics.get("pretrained_teacher")}


def baseline_row(result) -> dict:
    return {"model": result.name, "dev_accuracy": result.accuracy, "dev_macro_f1": result.macro_f1,
            "train_seconds": result.train_seconds,
            "predict_rows_per_second": result.predict_rows_per_second}


def print_table(rows: list[dict], header: str) -> None:
    print(header)
    print(f"{'model':<28} {'dev acc':>8} {'macro-F1':>9} {'train s':>9} {'predict/s':>10}")
    for row in rows:
        print(f"{row['model']:<28} {row['dev_accuracy']:>8.4f} {row['dev_macro_f1']:>9.4f} "
              f"{row['train_seconds']:>9.1f} {row['predict_rows_per_second']:>10.0f}")


def measure_process(command: list[str], interval: float = 0.05) -> dict:
    """Run ``command`` to completion and measure it as a whole process tree.

    Returns wall seconds; CPU seconds (user + system of the process and of every descendant it
    waited for, from ``os.wait4``); ``peak_rss_mib``, the peak of the summed RSS of the process
    and all its descendants, sampled every ``interval`` seconds with psutil (None without
    psutil; pages shared between processes count once per process); the exit status, stdout
    and the end of stderr. Not the kernel's ``ru_maxrss``: a child's starts at the RSS of the
    process that forked it, so it reports this process's size for any smaller command.
    """
    try:
        import psutil
    except ImportError:
        psutil = None
    peak_tree = [0]
    done = threading.Event()

    def sample(pid: int) -> None:
        try:
            root = psutil.Process(pid)
        except psutil.Error:
            return
        while not done.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.Error:
                return
            total = 0
            for process in tree:
                try:
                    total += process.memory_info().rss
                except psutil.Error:
                    pass
            peak_tree[0] = max(peak_tree[0], total)
            done.wait(interval)

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, text=True)
        sampler = threading.Thread(target=sample, args=(process.pid,), daemon=True)
        if psutil is not None:
            sampler.start()
        _, status, usage = os.wait4(process.pid, 0)  # not Popen.wait: that drops the rusage
        seconds = time.perf_counter() - started
        done.set()
        if psutil is not None:
            sampler.join()
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()[-2000:]
    return {"wall_seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "peak_rss_mib": peak_tree[0] / 2**20 if psutil is not None else None,
            "returncode": process.returncode, "stdout": stdout, "stderr": stderr}
