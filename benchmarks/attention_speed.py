"""newsclf's encoder layers against ``paddle.nn.TransformerEncoder`` with the same weights:
the same outputs, and the time of a forward pass (prediction) and of a forward + backward pass
(training) at the default model size, for each positional encoding that acts in the attention.

Both stacks get identical parameters (newsclf's layer keeps Paddle's names), identical inputs
(``--batch`` texts of ``--length`` positions, the last quarter of every other text padding)
and run alternately, ``--repeats`` rounds of ``--calls`` calls each; the median round is
reported, as milliseconds per call and as the ratio newsclf / Paddle (below 1: newsclf is
faster). ``rotary`` and ``relative`` run on newsclf's layer only (Paddle's has no such option):
their rows show what the option costs over newsclf's own sinusoidal run. Usage:

    python benchmarks/attention_speed.py [--batch 256] [--length 24] [--calls 20] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from newsclf.config import TrainConfig
from newsclf.model.layers import build_network
from newsclf.runtime import configure_paddle

paddle = configure_paddle()


def encoders(position: str):
    """newsclf's network for the default settings, and Paddle's encoder holding its weights."""
    config = TrainConfig(ensemble_size=1, position=position)
    network = build_network(config.model_spec(vocab_size=1000, n_classes=10),
                            dropout=config.dropout, attn_dropout=config.attn_dropout)
    layer = paddle.nn.TransformerEncoderLayer(
        config.d_model, config.n_heads, config.d_ff, dropout=config.dropout,
        attn_dropout=config.attn_dropout, act_dropout=config.dropout, activation="gelu",
        normalize_before=config.pre_ln)
    reference = paddle.nn.TransformerEncoder(
        layer, config.n_layers, norm=paddle.nn.LayerNorm(config.d_model) if config.pre_ln else None)
    reference.set_state_dict({name[len("encoder."):]: value
                              for name, value in network.state_dict().items()
                              if name.startswith("encoder.")})
    return network, reference, config


def ours(network, position):
    table = network.position_table if position == "sinusoidal" else None

    def run(x, keep):
        rotary = buckets = None
        length = x.shape[1]
        if position == "rotary":
            rotary = network.rotary_cos[:length], network.rotary_sin[:length]
        elif position == "relative":
            buckets = network.relative_table[:length, :length]
        elif table is not None:
            x = x + table[:length].unsqueeze(0)
        for layer in network.encoder.layers:
            x, _ = layer(x, keep, rotary, buckets)
        return x
    return run


def paddles(reference, network):
    def run(x, keep):
        return reference(x + network.position_table[:x.shape[1]].unsqueeze(0), src_mask=keep)
    return run


def timed(run, x, keep, calls: int, backward: bool) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        if backward:
            out = run(x, keep)
            out.mean().backward()
        else:
            with paddle.no_grad():
                run(x, keep)
    return (time.perf_counter() - start) / calls * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--length", type=int, default=24)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    paddle.seed(0)
    rng = np.random.default_rng(0)
    network, reference, config = encoders("sinusoidal")
    keep_np = np.ones((args.batch, args.length), dtype=bool)
    keep_np[::2, args.length * 3 // 4:] = False
    keep = paddle.to_tensor(keep_np).unsqueeze([1, 2])
    x_np = rng.normal(size=(args.batch, args.length, config.d_model)).astype("float32")
    x = paddle.to_tensor(x_np)
    network.eval()
    reference.eval()
    difference = float((ours(network, "sinusoidal")(x, keep)
                        - paddles(reference, network)(x, keep)).abs().max())
    print(f"batch {args.batch} x {args.length} positions, d_model {config.d_model}, "
          f"{config.n_heads} heads, {config.n_layers} layer(s), d_ff {config.d_ff}; "
          f"{paddle.get_device()}, {args.repeats} rounds of {args.calls} calls, medians")
    print(f"max output difference, newsclf vs Paddle (eval mode): {difference:.1e}")

    runs = {"Paddle's TransformerEncoder (sinusoidal)": paddles(reference, network),
            "newsclf, sinusoidal": ours(network, "sinusoidal")}
    modules = [network, reference]
    for position in ("rotary", "relative"):
        other, _, _ = encoders(position)
        runs[f"newsclf, {position}"] = ours(other, position)
        modules.append(other)
    x_train = paddle.to_tensor(x_np, stop_gradient=False)
    print(f"{'':42} {'predict ms':>11} {'ratio':>6} {'train ms':>9} {'ratio':>6}")
    medians = {}
    for backward in (False, True):
        for module in modules:  # dropout on while training
            module.train() if backward else module.eval()
        for name in runs:  # warm-up
            timed(runs[name], x_train if backward else x, keep, 2, backward)
        rounds = {name: [] for name in runs}
        for _ in range(args.repeats):
            for name, run in runs.items():
                rounds[name].append(timed(run, x_train if backward else x, keep, args.calls,
                                          backward))
        for name, values in rounds.items():
            medians[name, backward] = statistics.median(values)
    base = "Paddle's TransformerEncoder (sinusoidal)"
    for name in runs:
        print(f"{name:42} {medians[name, False]:11.2f} "
              f"{medians[name, False] / medians[base, False]:6.2f} "
              f"{medians[name, True]:9.2f} {medians[name, True] / medians[base, True]:6.2f}")


if __name__ == "__main__":
    main()
