"""Compatibility import path: training lives in :mod:`newsclf.training`."""

from newsclf.training import TrainResult, resolve_classes, train

__all__ = ["train", "TrainResult", "resolve_classes"]
