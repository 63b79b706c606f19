"""newsclf export: (re)write the inference export (Paddle Inference and ONNX graphs) that fast
prediction runs on."""

from __future__ import annotations

import argparse

from newsclf.cli.common import add_model_option

def add_parser(commands) -> argparse.ArgumentParser:
    export = commands.add_parser(
        "export", help="write the inference graphs that fast prediction runs on",
        description="Export a model directory's network as a Paddle Inference graph and, with "
                    "ONNX Runtime and paddle2onnx installed (the default), an ONNX graph "
                    "(DIR/inference), and check that each gives the network's scores; 'newsclf "
                    "train' does this already. Run it again after installing them to add the "
                    "ONNX graph.")
    add_model_option(export)
    return export


def run(args: argparse.Namespace) -> None:
    from newsclf.model.export import export_model, export_summary

    info = export_model(args.model)
    print(f"exported to {args.model}/inference: {export_summary(info)}")

