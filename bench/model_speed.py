"""Speed of the AttentionTransformer, as ratios against baselines run in the same process.

    .venv/bin/python bench/model_speed.py [--device cpu|cuda] [--rounds 7]

1. Training throughput (windows/s) against an ``nn.TransformerEncoder`` model of
   the same size (pre-LN, GELU, same input projection, positions and heads).
   Goal: >= 0.9x.
2. Inference time with ``return_attention=True`` against the fast path.
   Goal: <= 1.2x.

Rounds alternate between the two sides and the median of each is compared, so a
noisy machine slows both alike. Absolute numbers are printed for context only.
"""

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from attnviz.model import (
    AttentionTransformer,
    ModelConfig,
    PredictionHeads,
    Predictions,
    sinusoidal_positions,
)

SEQ_LEN, BATCH = 60, 64


class ReferenceEncoder(nn.Module):
    """The same model built from ``nn.TransformerEncoder``."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.input = nn.Linear(config.input_dim, config.d_model)
        self.register_buffer("positions", sinusoidal_positions(config.max_len, config.d_model))
        self.drop = nn.Dropout(config.dropout)
        layer = nn.TransformerEncoderLayer(
            config.d_model,
            config.n_heads,
            config.ff_mult * config.d_model,
            config.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, config.n_layers, enable_nested_tensor=False)
        self.heads = PredictionHeads(config.d_model)

    def forward(self, x: torch.Tensor) -> Predictions:
        h = self.drop(self.input(x) + self.positions[: x.size(1)])
        return self.heads(self.encoder(h)[:, -1])


def train_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor
) -> None:
    predictions = model(x)
    loss = (
        ((predictions.ret - y) ** 2).mean()
        + predictions.vol.mean()
        + predictions.direction_logit.mean()
    )
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def timed(step: Callable[[], None], repeats: int, sync: Callable[[], None]) -> float:
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    sync()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=20, help="batches per timed round")
    args = parser.parse_args()
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    config = ModelConfig()
    x = torch.randn(BATCH, SEQ_LEN, config.input_dim, device=device)
    y = torch.randn(BATCH, device=device)

    ours, reference = AttentionTransformer(config).to(device), ReferenceEncoder(config).to(device)
    optimizers = {m: torch.optim.AdamW(m.parameters(), lr=1e-4) for m in (ours, reference)}
    train_times: dict[nn.Module, list[float]] = {ours: [], reference: []}
    for model in train_times:
        model.train()
        timed(lambda m=model: train_step(m, optimizers[m], x, y), 3, sync)  # warm-up
    for _ in range(args.rounds):
        for model, times in train_times.items():
            times.append(
                timed(lambda m=model: train_step(m, optimizers[m], x, y), args.steps, sync)
            )
    throughput = {m: args.steps * BATCH / statistics.median(t) for m, t in train_times.items()}

    ours.eval()
    infer = {
        "fast": lambda: ours(x),
        "attention": lambda: ours(x, return_attention=True),
    }
    infer_times: dict[str, list[float]] = {name: [] for name in infer}
    with torch.no_grad():
        for step in infer.values():
            timed(step, 3, sync)
        for _ in range(args.rounds):
            for name, step in infer.items():
                infer_times[name].append(timed(step, args.steps * 5, sync))
    median = {name: statistics.median(t) for name, t in infer_times.items()}

    speedup = throughput[ours] / throughput[reference]
    slowdown = median["attention"] / median["fast"]
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"train, windows/s: AttentionTransformer {throughput[ours]:,.0f}")
    print(f"                  nn.TransformerEncoder {throughput[reference]:,.0f}")
    print(f"  ratio ours / reference = {speedup:.2f}x (goal >= 0.9x)")
    per_batch = {name: seconds * 1e3 / (args.steps * 5) for name, seconds in median.items()}
    print(f"inference, ms per batch: fast {per_batch['fast']:.2f}")
    print(f"                         return_attention {per_batch['attention']:.2f}")
    print(f"  ratio return_attention / fast = {slowdown:.2f}x (goal <= 1.2x)")


if __name__ == "__main__":
    main()
