"""Speed of exact attention flow against the networkx reference, in the same process.

    .venv/bin/python bench/flow_speed.py [--windows 5] [--positions 60] [--sharpness 3]

Each window is L = 3 layers of H = 4 heads of softmax attention over random logits with
standard deviation ``--sharpness``, head-averaged and residual-mixed (0.5 * A + 0.5 * I,
rows renormalised), as the pipeline mixes a trained model's attention. Both
``attention_flow`` and ``attention_flow_reference`` run on every window; the script prints
their per-window times, the largest absolute difference between them (must stay below 1e-6)
and the ratio of their total times (goal >= 100x). ``attention_flow`` is called once before
timing so that building its cached network structure is left out.
"""

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from attnviz import attention as att
from attnviz.maxflow import attention_flow, attention_flow_reference

N_LAYERS, N_HEADS = 3, 4


def mixed_attention(rng: np.random.Generator, n_positions: int, sharpness: float) -> np.ndarray:
    """(L, T, T) head-averaged, residual-mixed softmax attention over random logits."""
    logits = sharpness * rng.standard_normal((1, N_LAYERS, N_HEADS, n_positions, n_positions))
    attention = torch.softmax(torch.from_numpy(logits), dim=-1)
    return att.mixed_attention(att.head_mean(attention))[0].numpy()


def timed(flow: Callable[[np.ndarray], np.ndarray], mixed: np.ndarray) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    result = flow(mixed)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--positions", type=int, default=60)
    parser.add_argument("--sharpness", type=float, default=3.0, help="std of the logits")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    windows = [mixed_attention(rng, args.positions, args.sharpness) for _ in range(args.windows)]

    attention_flow(windows[0])  # warm-up: builds the cached network structure
    fast_total = reference_total = max_difference = 0.0
    print(f"L={N_LAYERS}, H={N_HEADS}, T={args.positions}, logit std {args.sharpness:g}")
    for index, mixed in enumerate(windows):
        fast, fast_seconds = timed(attention_flow, mixed)
        reference, reference_seconds = timed(attention_flow_reference, mixed)
        difference = float(np.abs(fast - reference).max())
        fast_total += fast_seconds
        reference_total += reference_seconds
        max_difference = max(max_difference, difference)
        print(
            f"window {index}: attention_flow {fast_seconds * 1e3:7.1f} ms, "
            f"reference {reference_seconds * 1e3:8.1f} ms, max |diff| {difference:.1e}"
        )
    print(f"max |attention_flow - reference| = {max_difference:.1e} (must be <= 1e-6)")
    ratio = reference_total / fast_total
    print(f"speed ratio reference / attention_flow = {ratio:.0f}x (goal >= 100x)")


if __name__ == "__main__":
    main()
