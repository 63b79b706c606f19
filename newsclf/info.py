"""What a model directory is, at a glance: classes, dev metrics, architecture and size, how it
was trained and with which libraries, and which inference engines can run it here. Read
without starting an engine or importing Paddle, for ``newsclf info`` and ``repr(Predictor)``.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

from newsclf import __version__
from newsclf.modeldir import ModelFiles, dev_metrics, installed_versions, load_model_dir
from newsclf.spec import BACKENDS


def _folder_bytes(path: Path) -> int:
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


def backend_status(files: ModelFiles) -> tuple[dict[str, str | None], str]:
    """For each engine (``onnx``, ``inference``, ``dynamic``): None if it can run the model on
    this machine, else why not; and the engine ``backend="auto"`` picks. The export is checked
    once for both."""
    from newsclf.model.export import export_problems
    from newsclf.predictor import choose_backend

    paddle_missing = None if importlib.util.find_spec("paddle") else \
        "PaddlePaddle is not installed; pip install paddlepaddle"
    problems = export_problems(files)
    status = {"onnx": problems[1], "inference": problems[0] or paddle_missing,
              "dynamic": paddle_missing}
    return status, choose_backend(files, "auto", problems)


def model_info(path: str | Path) -> dict:
    """Everything ``newsclf info`` shows, as JSON-ready data. The directory is checked as
    :func:`~newsclf.modeldir.load_model_dir` checks it."""
    files = load_model_dir(path)
    spec = files.spec.to_dict()
    metrics = dev_metrics(files)
    status, auto = backend_status(files)
    parameters = sum(math.prod(shape) for shape in files.info.get("weights", {}).values())
    export_dir = files.path / "inference"
    return {
        "path": str(files.path),
        "format_version": files.format_version,
        "written_by": files.info.get("newsclf_version"),
        "classes": list(files.labels),
        "metrics": {key: metrics[key] for key in ("dev_accuracy", "dev_macro_f1", "n_train",
                                                   "n_dev") if key in metrics},
        "predicts_with": predicts_with(files, metrics),
        "model": spec,
        "parameters": parameters,
        "bytes": {"model": sum(entry.get("bytes", 0)
                               for entry in files.info.get("files", {}).values()),
                  "inference_export": _folder_bytes(export_dir) if export_dir.is_dir() else 0},
        "training": _record(files.training.get("settings")),
        "trained_with": files.info.get("libraries", {}),
        "installed": {"newsclf": __version__,
                      **installed_versions("paddlepaddle", "onnxruntime")},
        "backends": {name: status[name] for name in BACKENDS if name != "auto"},
        "backend_auto": auto,
    }


def _record(value) -> dict:
    """A part of a record (``training.json``, which loading never reads and a user may have
    edited) that should be a JSON object: {} when it is not one."""
    return value if isinstance(value, dict) else {}


def student_round(metrics: dict) -> str:
    """Which distillation round's student a model's ``metrics`` describe, to follow the word
    "student": " (round K of N)", or "" for a run of one round."""
    rounds = metrics.get("student_rounds")
    kept = metrics.get("kept_round")
    if not isinstance(rounds, list) or len(rounds) < 2 or not isinstance(kept, int):
        return ""  # one round, or a record edited by hand
    return f" (round {kept} of {len(rounds)})"


def predicts_with(files: ModelFiles, metrics: dict) -> str:
    """What the model predicts with, as words: "one encoder", "an ensemble of 3 encoders",
    "one student encoder distilled from an ensemble of 2"."""
    members = files.spec.ensemble_size
    if metrics.get("predicts_with") == "student":
        taught = metrics.get("members")
        return (f"one student encoder{student_round(metrics)} distilled from an ensemble"
                + (f" of {len(taught)}" if isinstance(taught, list) else ""))
    return f"an ensemble of {members} encoders" if members > 1 else "one encoder"


def format_info(info: dict) -> str:
    """``model_info`` as the lines ``newsclf info`` prints."""
    model, metrics = info["model"], info["metrics"]
    classes = info["classes"]
    lines = [info["path"],
             f"  classes      {len(classes)}: {' '.join(classes)}"]
    if "dev_accuracy" in metrics and "dev_macro_f1" in metrics:
        sizes = ", ".join(f"{metrics[key]:,} {name}" for key, name in
                          (("n_train", "training"), ("n_dev", "dev")) if key in metrics)
        lines.append(f"  dev          accuracy {metrics['dev_accuracy']:.4f}, macro-F1 "
                     f"{metrics['dev_macro_f1']:.4f}" + (f" ({sizes} texts)" if sizes else ""))
    elif metrics.get("n_dev") == 0:
        lines.append("  dev          no dev scores (trained without --dev)")
    else:
        lines.append("  dev          no dev scores (metrics.json is missing, unreadable or "
                     "edited)")
    lines.append(f"  predicts     with {info['predicts_with']}")
    lines.append(
        f"  model        tokenizer {model.get('tokenizer')}, {model.get('n_layers')} layer(s) of "
        f"d_model {model.get('d_model')}, {model.get('n_heads')} heads, d_ff "
        f"{model.get('d_ff')}, {model.get('position')} positions, {model.get('pooling')} "
        f"pooling, max_len {model.get('max_len')}, vocabulary {model.get('vocab_size'):,}")
    lines.append(f"  size         {info['parameters']:,} parameters; model files "
                 f"{_megabytes(info['bytes']['model'])}, inference export "
                 f"{_megabytes(info['bytes']['inference_export'])}")
    settings = info["training"]
    if settings:
        keys = ("epochs", "batch_size", "lr", "seed", "ensemble_size")
        members = settings.get("ensemble_size", 1)
        if isinstance(members, int) and members > 1:  # one encoder has nothing to distil
            keys += ("distill",)
        shown = ", ".join(f"{key} {settings[key]}" for key in keys if key in settings)
        lines.append(f"  trained      {shown}")
    trained_with = info["trained_with"]
    lines.append(f"  versions     written by newsclf {info['written_by']} with paddlepaddle "
                 f"{trained_with.get('paddlepaddle')}, python {trained_with.get('python')}; "
                 f"here newsclf {info['installed']['newsclf']}, paddlepaddle "
                 f"{info['installed']['paddlepaddle']}, onnxruntime "
                 f"{info['installed']['onnxruntime']}")
    lines.append(f"  format       model format {info['format_version']}")
    for name, problem in info["backends"].items():
        lines.append(f"  {'backends' if name == 'onnx' else '':<12} {name:<10} "
                     + ("available" if problem is None else f"not available: {problem}"))
    lines.append(f"  {'':<12} {'(auto)':<10} {info['backend_auto']}")
    return "\n".join(lines)


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"
