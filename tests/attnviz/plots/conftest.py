"""Inputs for every renderer, and a reader that checks a PNG is whole and of the size returned."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.image import imread

LAYERS, HEADS, T = 2, 2, 12
LABELS = [f"t-{T - 1 - i}" for i in range(T - 1)] + ["t"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def attention_window(seed: int) -> np.ndarray:
    """A deterministic (L, H, T, T) row-stochastic attention window."""
    weights = np.random.default_rng(seed).random((LAYERS, HEADS, T, T)) ** 3
    return weights / weights.sum(axis=-1, keepdims=True)


def renderer_inputs(kind: str) -> dict[str, Any]:
    """Keyword arguments (all but ``path``) of the renderer of ``kind``."""
    rng = np.random.default_rng(7)
    n = 50
    return {
        "attention_grid": {"attention": attention_window(0), "labels": LABELS, "title": "grid"},
        "rollout": {"rollout": attention_window(1)[0, 0], "labels": LABELS, "title": "rollout"},
        "flow": {
            "weights": attention_window(2).mean(axis=1),
            "labels": LABELS,
            "title": "flow",
            "top_k": 10,
        },
        "timeline": {
            "ts": np.datetime64("2024-01-01T00:00") + np.arange(n) * np.timedelta64(1, "h"),
            "close": 100 + np.cumsum(rng.normal(size=n)),
            "confidence": rng.random(n),
            "collapse": np.arange(n) % 17 < 3,
            "regime": np.isin(np.arange(n), [10, 30]),
            "title": "timeline",
        },
        "attribution": {
            "features": ["ret", "range", "volume"],
            "scores": {"ig": rng.normal(size=3), "occlusion": rng.random(3) * 10},
            "title": "attribution",
        },
        "heads": {
            "specialisation": rng.random(LAYERS),
            "head_confidence": rng.random((LAYERS, HEADS)),
            "patterns": [["local", "recent"], ["periodic", "event"]],
            "title": "heads",
        },
        "equity_curves": {
            "ts": np.datetime64("2024-01-01") + np.arange(n) * np.timedelta64(1, "D"),
            "equity": {
                name: np.cumprod(1 + rng.normal(0.0005, 0.01, n))
                for name in ("buy and hold", "unfiltered", "filtered p70")
            },
            "title": "equity",
            "highlight": "filtered p70",
            "benchmark": "buy and hold",
            "cost_bps": 2.0,
        },
        "sharpe_by_percentile": {
            "percentiles": np.array([50.0, 70.0, 90.0]),
            "sharpe": np.array([0.4, 0.9, np.nan]),  # no trades at the 90th percentile
            "low": np.array([-0.5, -0.1, np.nan]),
            "high": np.array([1.3, 1.9, np.nan]),
            "title": "sharpe",
            "unfiltered": (0.3, -0.5, 1.1),
            "chosen": 70.0,
            "cost_bps": 2.0,
        },
        "random_distribution": {
            "draws": rng.normal(0.0, 0.8, 1000),
            "value": 1.2,
            "title": "random",
            "percentile": 93.0,
            "label": "filtered p70",
            "cost_bps": 2.0,
        },
    }[kind]


def read_png(path: Path, size: tuple[int, int]) -> np.ndarray:
    """The RGBA pixels of the PNG at ``path``, after checking it is a whole PNG of ``size``."""
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    pixels = imread(path)
    assert (pixels.shape[1], pixels.shape[0]) == size
    assert [p.name for p in path.parent.iterdir() if not p.name.endswith(".png")] == []
    return pixels


@pytest.fixture
def window() -> Callable[[int], np.ndarray]:
    """Factory of deterministic attention windows (see :func:`attention_window`)."""
    return attention_window


@pytest.fixture
def inputs() -> Callable[[str], dict[str, Any]]:
    """Factory of renderer arguments by kind (see :func:`renderer_inputs`)."""
    return renderer_inputs


@pytest.fixture
def png() -> Callable[[Path, tuple[int, int]], np.ndarray]:
    """Reader of a PNG that checks it (see :func:`read_png`)."""
    return read_png


@pytest.fixture
def labels() -> list[str]:
    """The T position labels of :func:`attention_window`: ``t-11`` ... ``t``."""
    return list(LABELS)
