"""Streamed attention analytics against the model's own inference, in one process.

    .venv/bin/python bench/analytics_speed.py [--windows 20000] [--batch 256] [--rounds 3]

For N windows (T=60, 3 layers, 4 heads; the default model; weights need not be
trained for timing; the batch defaults to the analysis's) it measures, as medians of
interleaved rounds:

1. inference: the model's fast path over all windows, in batches;
2. the attention forward pass (``return_attention=True``) over the same windows;
3. analytics without attention flow and Integrated Gradients
   (``AnalysisConfig(flow=False, ig_steps=0)``): the attention forward pass plus
   every measure and table row. Goal: what it adds beyond the forward pass takes
   <= 1x the inference time;
4. the default analysis: the same with exact flow and Integrated Gradients on the
   windows the default config explains (the newest and a sample of the older ones).
   Goal: the same, flow and Integrated Gradients included.

Then the cost per window of flow and of Integrated Gradients, from one batch analysed
with each on every window and without either (interleaved rounds too), against the
inference per window; with it, the share of the windows that flow and Integrated
Gradients could be computed for within the 1x goal, beside the default's share.

Last, the peak memory: ``analyze`` runs in a fresh process for N/4 and N windows, with
glibc's default allocator settings and with a fixed mmap threshold, and the rise
of its peak RSS is compared with what holding every window's attention would
take (N x L x H x T x T floats).
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import torch

from attnviz.analysis import AnalysisConfig, analyze
from attnviz.checkpoint import TrainedModel
from attnviz.features import FEATURES, FeatureConfig, Scaler, Windows
from attnviz.importance import explained
from attnviz.model import AttentionTransformer, ModelConfig

SEQ_LEN = 60
NO_FLOW_NO_IG = AnalysisConfig(flow=False, ig_steps=0)


def setup(n: int) -> tuple[TrainedModel, Windows, torch.Tensor]:
    """An untrained default model, n random windows and a per-head confidence reference."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    features = len(FEATURES)
    config = ModelConfig()
    trained = TrainedModel(
        AttentionTransformer(config).eval(),
        Scaler(np.zeros(features, np.float32), np.ones(features, np.float32)),
        1.0,
        FeatureConfig(seq_len=SEQ_LEN),
    )
    windows = Windows(
        x=rng.normal(size=(n, SEQ_LEN, features)).astype(np.float32),
        next_return=rng.normal(0, 0.01, n).astype(np.float32),
        direction=rng.integers(0, 2, n).astype(np.float32),
        future_vol=np.full(n, 0.01, np.float32),
        trailing_vol=np.full(n, 0.01, np.float32),
        end_ts=np.datetime64("2020-01-01T00:00", "us") + np.arange(n) * np.timedelta64(1, "h"),
    )
    return trained, windows, torch.rand(1000, config.n_layers, config.n_heads)


def rss_mb(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process in MB, from /proc (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(n: int, batch: int) -> None:
    """Analyse n windows and print how far the peak RSS rose above the RSS before."""
    trained, windows, reference = setup(n)
    Path("/proc/self/clear_refs").write_text("5")  # resets the peak (VmHWM) to the current RSS
    before = rss_mb("VmRSS")
    analyze(trained, windows, reference, config=replace(NO_FLOW_NO_IG, batch_size=batch))
    print(rss_mb("VmHWM") - before)


def peak_rise(n: int, batch: int, environment: dict[str, str]) -> float:
    command = [sys.executable, __file__, "--child", str(n), "--batch", str(batch)]
    run = subprocess.run(command, capture_output=True, text=True, check=True, env=environment)
    return float(run.stdout)


def interleaved(steps: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median seconds of each step over ``rounds`` rounds that run every step in turn.

    Interleaved, so that a noisy neighbour slows all of them alike.
    """
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            started = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(seconds) for name, seconds in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--windows", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=AnalysisConfig().batch_size)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.batch)
        return

    trained, windows, reference = setup(args.windows)
    x = trained.prepare(windows).x
    configs = {
        "cheap": replace(NO_FLOW_NO_IG, batch_size=args.batch),
        "default": AnalysisConfig(batch_size=args.batch),
    }

    @torch.no_grad()
    def run_model(return_attention: bool) -> None:
        for i in range(0, len(x), args.batch):
            trained.model(x[i : i + args.batch], return_attention=return_attention)

    steps: dict[str, Callable[[], object]] = {
        "inference": lambda: run_model(False),
        "forward": lambda: run_model(True),
        **{
            name: partial(analyze, trained, windows, reference, config=config)
            for name, config in configs.items()
        },
    }
    medians = interleaved(steps, args.rounds)
    inference, forward = medians["inference"], medians["forward"]

    # Flow and Integrated Gradients on every window of one batch, against neither.
    one_batch = windows.take(np.arange(args.batch))
    on_every_window = {
        "neither": configs["cheap"],
        "flow": replace(configs["default"], ig_steps=0, explain_every=1),
        "integrated gradients": replace(configs["default"], flow=False, explain_every=1),
    }
    batch_medians = interleaved(
        {
            name: partial(analyze, trained, one_batch, reference, config=config)
            for name, config in on_every_window.items()
        },
        args.rounds,
    )
    per_window = {
        name: (batch_medians[name] - batch_medians["neither"]) / args.batch
        for name in ("flow", "integrated gradients")
    }
    quarter = args.windows // 4
    # glibc raises its mmap threshold as large blocks are freed, then serves them from a heap
    # that it does not shrink: RSS creeps up although nothing is held. A fixed threshold
    # (MALLOC_MMAP_THRESHOLD_) shows what the analysis itself needs.
    allocators = {
        "glibc default": {k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"},
        "MALLOC_MMAP_THRESHOLD_=65536": {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"},
    }
    rise = {
        (name, n): peak_rise(n, args.batch, environment)
        for name, environment in allocators.items()
        for n in (quarter, args.windows)
    }
    config = trained.model.config
    held = args.windows * config.n_layers * config.n_heads * SEQ_LEN**2 * 4 / 2**20
    shape = f"T={SEQ_LEN}, {config.n_layers} layers x {config.n_heads} heads"
    print(f"{args.windows} windows, {shape}, batch {args.batch}; medians of {args.rounds} rounds")
    default = configs["default"]
    sampled = int(explained(args.windows, default.explain_newest, default.explain_every).sum())

    def line(label: str, seconds: float) -> None:
        print(f"{label:<36} {seconds:7.2f} s = {seconds / inference:.2f}x inference")

    line("inference (fast path)", inference)
    line("attention forward pass", forward)
    labels = {
        "cheap": "analytics, no flow / IG",
        "default": f"analytics, flow + IG on {sampled} windows",
    }
    for name, label in labels.items():
        line(label, medians[name])
        line("  beyond the forward pass", medians[name] - forward)
        print("goal: beyond the forward pass <= 1x inference")
    inference_per_window = inference / args.windows
    for name, seconds in per_window.items():
        times = seconds / inference_per_window
        print(f"per window, {name}: {seconds * 1e3:.1f} ms = {times:.0f}x inference per window")
    # What the 1x goal leaves for flow and IG once the cheap analytics are paid for.
    room = inference - (medians["cheap"] - forward)
    both = sum(per_window.values())
    fits = f"1 window in {args.windows * both / room:.0f}" if room > 0 else "no window"
    share = f"1 in {args.windows / sampled:.0f}"
    print(f"goal: flow + IG within the 1x budget fit {fits}; the default explains {share}")
    for (name, n), megabytes in rise.items():
        print(f"peak RSS rise analysing {n:>6} windows, {name:<29} {megabytes:6.0f} MB")
    print(f"holding all {args.windows} windows' attention at once would take {held:.0f} MB")


if __name__ == "__main__":
    main()
