"""Which files and folders newsclf writes: the one declaration of the model directory, a training
run's checkpoints and teacher cache, the inference export and the evaluation reports.

Every part of newsclf that must tell its own files from the user's (the training lock, the
report writer, the exporter, the estimator, the labelling commands' refusal to overwrite a
model's files) reads the names and layouts here; :func:`newsclf.files.not_newsclfs` and
:func:`newsclf.files.in_layout` apply them. A layout is (a pattern of its file names, ((a
pattern of its folder names, the layout of such a folder), ...)).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from newsclf.files import names_pattern
from newsclf.spec import USER_DICT_FILE

# --- the model directory (newsclf.modeldir) ---------------------------------------------------
MODEL_FORMAT = "newsclf-model"  # the "format" of a model's config.json
CONFIG, VOCAB, LABELS, WEIGHTS, USER_DICT, TRAINING = (
    "config.json", "vocab.json", "labels.json", "model.safetensors", USER_DICT_FILE,
    "training.json")
METRICS, TRAIN_LOG, EVAL_DEV = "metrics.json", "train_log.jsonl", "eval_dev"
# the original class values of a model saved by newsclf.estimator (when they are not strings)
CLASS_VALUES_FILE = "estimator.json"
# newsclf evaluate's reports, by default in the model directory: DIR/eval-<data file name>
EVAL_REPORTS_PREFIX = "eval-"
# the folders of the inference export and of a training run's checkpoints, each replaced whole
# by what writes it
EXPORT_DIR, CHECKPOINT_DIR = "inference", "checkpoint"

# the files a loaded model was read from (what ``newsclf serve`` watches for a change)
PREDICTION_FILES = (CONFIG, VOCAB, LABELS, WEIGHTS, USER_DICT, TRAINING, METRICS,
                    CLASS_VALUES_FILE)

# --- a training run's checkpoints (newsclf.training.checkpoint) and teacher cache --------------
CHECKPOINT_STATE = "state.json"
TEACHER_DIR, TEACHER_PROBABILITIES = "teacher", "probabilities.safetensors"
TEACHER_VECTORS = "vectors.safetensors"  # the frozen-vector cache of earlier releases

# --- the inference export (newsclf.model.export) ----------------------------------------------
EXPORT_PREFIX, EXPORT_INFO = "model", "export.json"
ONNX_FILE = EXPORT_PREFIX + ".onnx"
# every file an export holds (the ONNX graph only with ONNX Runtime and paddle2onnx)
EXPORT_FILES = (EXPORT_INFO, EXPORT_PREFIX + ".json", EXPORT_PREFIX + ".pdiparams", ONNX_FILE)
CONVERTED_ONNX = "converted.onnx"  # paddle2onnx's graph, before constant folding
EXPORT_TOKEN_BYTES = 4  # an export is staged in DIR/.inference-<8 hex digits>
EXPORT_LAYOUT = (names_pattern(*EXPORT_FILES), ())

# --- an evaluation report (newsclf.evaluation.report) -----------------------------------------
REPORT_METRICS_JSON = "metrics.json"
REPORT_TXT = "classification_report.txt"
CONFUSION_CSV = "confusion_matrix.csv"
CONFUSION_NORMALIZED_CSV = "confusion_matrix_normalized.csv"
MISCLASSIFIED_CSV = "misclassified.csv"
CONFUSION_PNG = "confusion_matrix.png"
REPORT_FILES = (REPORT_METRICS_JSON, REPORT_TXT, CONFUSION_CSV, CONFUSION_NORMALIZED_CSV,
                MISCLASSIFIED_CSV, CONFUSION_PNG)
REPORT_LAYOUT = (names_pattern(*REPORT_FILES), ())

# --- the whole of a model directory ----------------------------------------------------------
# What a run writes before its first checkpoint: the epoch's log line, then (one encoder) the
# model of that epoch, config.json last
BEFORE_THE_FIRST_CHECKPOINT = frozenset({TRAIN_LOG, VOCAB, LABELS, WEIGHTS, USER_DICT, TRAINING})
_CHECKPOINT_FILES = re.compile(rf"{re.escape(CHECKPOINT_STATE)}|state-epoch\d+\.safetensors")
# the model's files, a training run's checkpoints (per member or student, and the teacher's
# cache), `newsclf evaluate`'s default reports, the inference export and the folder a killed
# export was staged in
MODEL_LAYOUT = (
    names_pattern(CONFIG, VOCAB, LABELS, WEIGHTS, USER_DICT, TRAINING, METRICS, TRAIN_LOG,
                  CLASS_VALUES_FILE),
    ((names_pattern(EXPORT_DIR), EXPORT_LAYOUT),
     (re.compile(rf"\.{EXPORT_DIR}-[0-9a-f]{{{2 * EXPORT_TOKEN_BYTES}}}"),
      (names_pattern(*EXPORT_FILES, CONVERTED_ONNX), ())),
     (names_pattern(EVAL_DEV), REPORT_LAYOUT),
     (re.compile(re.escape(EVAL_REPORTS_PREFIX) + ".+"), REPORT_LAYOUT),
     (names_pattern(CHECKPOINT_DIR), (_CHECKPOINT_FILES,
                                      ((re.compile(r"member-\d+|student(-\d+)?"),
                                        (_CHECKPOINT_FILES, ())),
                                       (names_pattern(TEACHER_DIR),
                                        (names_pattern(TEACHER_PROBABILITIES, TEACHER_VECTORS), ())))))))
MODEL_LAYOUT_DEPTH = 3  # the deepest file of MODEL_LAYOUT: checkpoint/member-1/state.json


def is_model_dir(directory: str | Path) -> bool:
    """Whether ``directory`` holds a newsclf model (a newsclf ``config.json``; whether the
    model loads does not matter here)."""
    try:
        info = json.loads((Path(directory) / CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(info, dict) and info.get("format") == MODEL_FORMAT
