"""newsclf train: train a model on labelled texts and write its directory."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import fields

from newsclf.cli.common import add_data_options, layout_help, log_to_stderr, read_labelled_files
from newsclf.config import TEACHERS, TrainConfig, setting_help, setting_type
from newsclf.errors import DataError, NewsclfError
from newsclf.info import student_round
from newsclf.layouts import METRICS
from newsclf.spec import POOLINGS, POSITIONS, TOKENIZERS

_CHOICES = {"tokenizer": TOKENIZERS, "pooling": POOLINGS, "position": POSITIONS}
_METAVARS = {"teacher": "|".join(TEACHERS) + "|DIR"}


def add_parser(commands) -> argparse.ArgumentParser:
    train = commands.add_parser("train", **layout_help(
        help="train a model on labelled texts", description="Train a model and write its "
        "directory."))
    train.add_argument("--train", required=True, metavar="PATH",
                       help="training data (see the layout options and examples below)")
    train.add_argument("--dev", metavar="PATH",
                       help="dev data for early stopping and model selection (recommended)")
    train.add_argument("--output", required=True, metavar="DIR",
                       help="model directory to write: new or empty, unless --overwrite or "
                            "--resume; a folder holding other files is never written")
    train.add_argument("--unlabeled", metavar="PATH",
                       help="texts without labels for a distilled student to learn the "
                            "ensemble's predictions on, read as 'newsclf "
                            "predict' reads its input (e.g. .txt with one text per line)")
    train.add_argument("--unlabeled-text-column", metavar="NAME|N",
                       help="the text column of --unlabeled, by name or position from 1 "
                            "(default: detected, as for files to label)")
    train.add_argument("--unlabeled-header", action=argparse.BooleanOptionalAction,
                       help="whether the first row of an --unlabeled CSV, TSV or Excel file "
                            "names the columns (default: detected, as for files to label)")
    train.add_argument("--unlabeled-sheet", metavar="NAME|N",
                       help="the sheet of an --unlabeled .xlsx workbook, by name or position "
                            "from 1 (default: the first)")
    train.add_argument("--unlabeled-encoding", metavar="ENCODING",
                       help="the encoding of --unlabeled (default: --encoding's)")
    add_data_options(train)
    train.add_argument("--config", metavar="FILE",
                       help="JSON file of settings (the names below, with underscores); "
                            "flags given on the command line win")
    train.add_argument("--overwrite", action="store_true",
                       help="replace the model (or interrupted run) in OUTPUT: training runs in "
                            "a hidden folder beside it, .OUTPUT.newsclf-staging, which takes its "
                            "place once the new model is complete; the old model keeps working "
                            "until then, and stays if the run is interrupted")
    train.add_argument("--resume", action="store_true",
                       help="continue an interrupted run from OUTPUT/checkpoint (same data and "
                            "settings; ends as the uninterrupted run would); with --overwrite, "
                            "continue an interrupted --overwrite run")
    train.add_argument("--no-export", action="store_true",
                       help="skip the Paddle Inference export at the end (prediction then runs "
                            "on the slower dynamic graph until 'newsclf export')")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--workers", type=int, metavar="N",
                       help="ensemble members trained at once, one process and CPU core each "
                            "(default: as many as members and cores allow; results do not "
                            "depend on it)")
    train.add_argument("--device", default="cpu", metavar="cpu|gpu|gpu:N",
                       help="what Paddle trains on (and the teacher computes on): cpu (the "
                            "default), or a GPU with paddlepaddle-gpu installed")
    parallel = train.add_argument_group("data-parallel training")
    parallel.add_argument("--nproc-per-node", type=int, metavar="N",
                          help="train in N processes on this machine through "
                               "paddle.distributed.launch, each taking batch-size texts per "
                               "step, gradients averaged (default: 1)")
    parallel.add_argument("--ips", metavar="IP,IP,...",
                          help="the machines of a run on several, passed to the launcher: run "
                               "the same command on each")
    defaults = TrainConfig()
    group = train.add_argument_group("model and training settings")
    for field in fields(TrainConfig):
        default = getattr(defaults, field.name)
        flag = "--" + field.name.replace("_", "-")
        help_text = setting_help(field.name).replace("%", "%%")  # argparse formats it
        if default is not None:
            help_text += f" (default: {default})"
        if setting_type(field.name) is bool:
            group.add_argument(flag, dest=field.name, action=argparse.BooleanOptionalAction,
                               default=None, help=help_text)
        else:
            group.add_argument(flag, dest=field.name, type=setting_type(field.name), default=None,
                               choices=_CHOICES.get(field.name), help=help_text,
                               metavar=None if field.name in _CHOICES
                               else _METAVARS.get(field.name, field.name.upper()))
    return train


def train_config(args: argparse.Namespace) -> TrainConfig:
    values = TrainConfig.from_file(args.config).to_dict() if args.config else {}
    for field in fields(TrainConfig):
        given = getattr(args, field.name)
        if given is not None:
            values[field.name] = given
    return TrainConfig.from_dict(values, source="command line")


def read_unlabeled(args: argparse.Namespace) -> list[str]:
    """The texts of ``--unlabeled``, read as ``newsclf predict`` reads its input."""
    from newsclf.datafiles import read_texts
    from newsclf.training.distill import unlabeled_text_list

    try:
        texts = read_texts(args.unlabeled, text_column=args.unlabeled_text_column,
                           header=args.unlabeled_header, sheet=args.unlabeled_sheet,
                           encoding=args.unlabeled_encoding or args.encoding, log=log_to_stderr)
    except DataError as exc:  # its layout is chosen with this command's own flags
        flags = {"--text-column": "--unlabeled-text-column", "--header": "--unlabeled-header",
                 "--no-header": "--no-unlabeled-header", "--sheet": "--unlabeled-sheet",
                 "--encoding": "--unlabeled-encoding"}
        raise DataError(re.sub("|".join(sorted(flags, key=len, reverse=True)),
                               lambda found: flags[found.group()], str(exc))) from None
    return unlabeled_text_list(texts, args.unlabeled)


def run(args: argparse.Namespace) -> None:
    from newsclf.training import train
    from newsclf.training.distill import check_unlabeled_allowed
    from newsclf.training.distributed import LAUNCHED_BY_NEWSCLF

    config = train_config(args)
    if args.unlabeled is not None:
        check_unlabeled_allowed(config)
    if _launched(args, config):
        return
    class_names, train_data, dev_data = read_labelled_files(args, args.train, args.dev)
    unlabeled = read_unlabeled(args) if args.unlabeled is not None else None
    result = train(config, train_data, dev_data, args.output, class_names,
                   progress=not args.no_progress, log=log_to_stderr, resume=args.resume,
                   export=not args.no_export, workers=args.workers, overwrite=args.overwrite,
                   unlabeled_texts=unlabeled, device=args.device)
    if not os.environ.get(LAUNCHED_BY_NEWSCLF):  # else the process that launched it says it
        _show_result(result.metrics, result.output_dir)


def _show_result(metrics: dict, output_dir) -> None:
    if "dev_accuracy" in metrics:
        print(f"dev accuracy {metrics['dev_accuracy']:.4f}  macro-F1 {metrics['dev_macro_f1']:.4f}  "
              f"({_kept(metrics)})")
    print(f"model written to {output_dir}")


def _launched(args: argparse.Namespace, config: TrainConfig) -> bool:
    """Run the training in the processes ``--nproc-per-node`` and ``--ips`` ask for, through
    ``paddle.distributed.launch``; returns False if they ask for this process alone."""
    from newsclf.training.distributed import launch, under_launcher
    from newsclf.training.lock import OutputDirectory

    if args.nproc_per_node is None and args.ips is None:
        return False
    if args.nproc_per_node is not None and args.nproc_per_node < 1:
        raise NewsclfError(f"--nproc-per-node must be at least 1, got {args.nproc_per_node}")
    ips = [ip.strip() for ip in (args.ips or "").split(",") if ip.strip()]
    if args.ips is not None and not ips:
        raise NewsclfError("--ips needs the machines' addresses, e.g. --ips 10.0.0.1,10.0.0.2")
    if under_launcher():
        raise NewsclfError("--nproc-per-node and --ips start paddle.distributed.launch "
                           "themselves; leave them out of a command the launcher runs")
    if (args.nproc_per_node or 1) == 1 and len(ips) <= 1:
        return False
    config.validate()
    output = OutputDirectory(args.output, overwrite=args.overwrite, resume=args.resume)
    output.check()  # before starting processes that would each refuse it
    code = launch(_worker_arguments(args), args.nproc_per_node or 1, ips, log_to_stderr)
    if code:
        sys.exit(code)
    metrics_file = output.path / METRICS
    if metrics_file.is_file():  # on the machine whose first process is rank 0
        _show_result(json.loads(metrics_file.read_text(encoding="utf-8")), output.path)
    return True


def _worker_arguments(args: argparse.Namespace) -> list[str]:
    """The command line of ``args`` for the launched processes: ``train`` and every option
    given, without ``--nproc-per-node`` and ``--ips``."""
    arguments = ["train"]
    for action in add_parser(argparse.ArgumentParser().add_subparsers())._actions:
        value = getattr(args, action.dest, None)
        if (not action.option_strings or action.dest in ("help", "nproc_per_node", "ips")
                or value is None or value == action.default):
            continue
        flag = action.option_strings[0]
        if isinstance(action, argparse.BooleanOptionalAction):
            arguments.append(flag if value else "--no-" + flag[2:])
        elif action.nargs == 0:
            arguments.append(flag)
        else:
            arguments.append(f"{flag}={value}")
    return arguments


def _kept(metrics: dict) -> str:
    """What the model directory predicts with, for the closing line."""
    if metrics.get("predicts_with") == "student":
        teacher = metrics["teacher"]
        return (f"student{student_round(metrics)} of an ensemble of "
                f"{len(metrics['members'])}, best epoch "
                f"{metrics['best_epoch']} of {metrics['epochs_run']}; the ensemble: accuracy "
                f"{teacher['dev_accuracy']:.4f}, macro-F1 {teacher['dev_macro_f1']:.4f}")
    if "members" in metrics:
        return f"ensemble of {len(metrics['members'])}, best epochs " + ", ".join(
            f"{m['best_epoch']} of {m['epochs_run']}" for m in metrics["members"])
    return f"best epoch {metrics['best_epoch']} of {metrics['epochs_run']}"
