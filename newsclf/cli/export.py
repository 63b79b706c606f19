"""newsclf export: (re)write the Paddle Inference export prediction runs on."""

from __future__ import annotations

import argparse

from newsclf.cli.common import add_model_option

def add_parser(commands) -> argparse.ArgumentParser:
    export = commands.add_parser(
        "export", help="write the Paddle Inference graph that fast prediction runs on",
        description="Export a model directory's network as a static graph (DIR/inference) and "
                    "check that it gives the same logits; 'newsclf train' does this already.")
    add_model_option(export)
    return export


def run(args: argparse.Namespace) -> None:
    from newsclf.model.export import export_model

    info = export_model(args.model)
    print(f"exported to {args.model}/inference (max logit difference "
          f"{info['max_abs_logit_difference']:.1e} over {info['checked_lengths']} lengths)")
