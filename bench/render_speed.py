"""Speed of rendering attention-grid PNGs, as a ratio against naive pyplot in the same process.

    .venv/bin/python bench/render_speed.py [--windows 60] [--processes N]

Renders N attention grids (3 layers x 4 heads, T = 60) two ways:

1. naive: a new ``pyplot`` figure per PNG (``plt.subplots``, ``imshow`` per panel,
   each on its own scale, one colour bar, ``savefig``, ``close``), with the same
   titles, axis labels and ticks as ours, and constrained layout so that they do
   not overlap (as ours);
2. ours: :func:`attnviz.plots.render_jobs` over ``os.cpu_count()`` worker
   processes, each reusing one ``AttentionGridRenderer``. The time includes
   starting the workers and sending the windows to them.

Prints PNGs/second for each and the ratio ours / naive. Goal: >= 5x.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from attnviz.plots import RenderJob, render_jobs

LAYERS, HEADS, T = 3, 4, 60
LABELS = [f"t-{T - 1 - i}" for i in range(T - 1)] + ["t"]


def windows(n: int) -> list[np.ndarray]:
    """``n`` random (L, H, T, T) row-stochastic attention windows, peaked like trained heads."""
    rng = np.random.default_rng(0)
    result = []
    for _ in range(n):
        weights = np.exp(2.0 * rng.normal(size=(LAYERS, HEADS, T, T)))
        result.append(weights / weights.sum(axis=-1, keepdims=True))
    return result


def render_naive(attention: np.ndarray, path: Path, title: str) -> None:
    """One grid the straightforward way: a fresh pyplot figure, drawn and closed."""
    fig, axes = plt.subplots(LAYERS, HEADS, figsize=(10.8, 8.6), dpi=100, layout="constrained")
    ticks = np.arange(T - 1, -1, -10)[::-1]
    for layer in range(LAYERS):
        for head in range(HEADS):
            ax = axes[layer, head]
            peak = attention[layer, head].max()
            image = ax.imshow(attention[layer, head] / peak, cmap="viridis", vmin=0, vmax=1)
            ax.set_xticks(ticks, [LABELS[i] for i in ticks], fontsize=7)
            ax.set_yticks(ticks, [LABELS[i] for i in ticks], fontsize=7)
            ax.set_title(f"head {head}, max {peak:.3f}", fontsize=9)
            ax.set_xlabel("key", fontsize=9)
            ax.set_ylabel("query", fontsize=9)
    fig.colorbar(image, ax=axes, label="weight / the panel's largest", shrink=0.8, aspect=40)
    fig.suptitle(title, fontsize=13)
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--windows", type=int, default=60, help="PNGs to render each way")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    attention = windows(args.windows)

    with tempfile.TemporaryDirectory(prefix="render-speed-") as folder:
        out = Path(folder)
        start = time.perf_counter()
        for index, window in enumerate(attention):
            render_naive(window, out / f"naive_{index}.png", f"window {index}")
        naive = args.windows / (time.perf_counter() - start)

        jobs = [
            RenderJob(
                "attention_grid",
                out / f"ours_{index}.png",
                {"attention": window, "labels": LABELS, "title": f"window {index}"},
            )
            for index, window in enumerate(attention)
        ]
        start = time.perf_counter()
        render_jobs(jobs, processes=args.processes)
        ours = args.windows / (time.perf_counter() - start)

    print(f"{args.windows} attention grids ({LAYERS} layers x {HEADS} heads, T={T})")
    print(f"naive pyplot, 1 process:       {naive:6.1f} PNGs/s")
    print(f"render_jobs, {args.processes:2d} processes:     {ours:6.1f} PNGs/s")
    print(f"  ratio ours / naive = {ours / naive:.1f}x (goal >= 5x)")


if __name__ == "__main__":
    main()
