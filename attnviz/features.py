"""Features, targets, windows and splits: everything the model sees, built without look-ahead.

The rules that keep the future out:

* every feature of bar t is computed from bars up to and including t (rolling
  windows and exponential averages only look back);
* the targets of the window ending at bar t are r(t+1) and the volatility of
  r(t+1) .. r(t+h), strictly after the window;
* train, validation and test are chronological, with an embargo of
  ``seq_len + horizon`` bars between them, so no bar is an input or a target of
  windows in two parts;
* the feature scaler and the target scale are fitted on the training part only.

``tests/attnviz/test_features.py`` proves each rule.
"""

from dataclasses import dataclass
from typing import Annotated

import numpy as np
import polars as pl
from numpy.lib.stride_tricks import sliding_window_view
from pydantic import Field

FEATURES: tuple[str, ...] = (
    "log_return",  # ln(close_t / close_t-1)
    "volatility",  # std of log returns over the last vol_window bars
    "rsi",  # Wilder's RSI over rsi_period bars, scaled to [0, 1] (recursive, seeded at bar 1)
    "range",  # (high - low) / close: the bar's span
    "body",  # (close - open) / open: the bar's direction and size
    "volume_change",  # ln((volume_t + 1) / (volume_t-1 + 1)); +1 keeps zero-volume bars finite
    "macd_hist",  # MACD histogram (EMA fast - EMA slow - signal EMA) / close: momentum, scale-free
    "ma_distance",  # close / SMA(ma_window) - 1: stretch from the moving average
)


@dataclass(frozen=True)
class FeatureConfig:
    """How features, targets and windows are built.

    Attributes
    ----------
    seq_len
        Bars per window.
    horizon
        Bars ahead over which the volatility target is measured.
    vol_window, rsi_period, ma_window, macd_fast, macd_slow, macd_signal
        Look-backs of the features.
    """

    seq_len: Annotated[int, Field(ge=2, le=512)] = 60
    horizon: Annotated[int, Field(ge=1)] = 5
    vol_window: Annotated[int, Field(ge=2)] = 20
    rsi_period: Annotated[int, Field(ge=2)] = 14
    ma_window: Annotated[int, Field(ge=2)] = 20
    macd_fast: Annotated[int, Field(ge=1)] = 12
    macd_slow: Annotated[int, Field(ge=2)] = 26
    macd_signal: Annotated[int, Field(ge=1)] = 9

    @property
    def warmup(self) -> int:
        """Leading bars dropped because a feature's look-back is not yet full."""
        return max(
            self.vol_window, self.ma_window, self.macd_slow + self.macd_signal, 3 * self.rsi_period
        )

    @property
    def embargo(self) -> int:
        """Bars between splits: one window plus the target horizon."""
        return self.seq_len + self.horizon


def compute_features(bars: pl.DataFrame, config: FeatureConfig) -> pl.DataFrame:
    """The eight features of every bar, from that bar and the bars before it.

    Parameters
    ----------
    bars
        One series' bars with ``ts, open, high, low, close, volume``, oldest first.

    Returns
    -------
    pl.DataFrame
        ``ts`` and :data:`FEATURES`; rows before ``config.warmup`` may hold nulls.
    """
    close, log_return = pl.col("close"), (pl.col("close") / pl.col("close").shift(1)).log()
    change = close.diff()
    # Wilder's average gain and loss over rsi_period bars.
    gain = _wilder(change.clip(lower_bound=0), config.rsi_period)
    loss = _wilder((-change).clip(lower_bound=0), config.rsi_period)
    macd = close.ewm_mean(span=config.macd_fast, adjust=False) - close.ewm_mean(
        span=config.macd_slow, adjust=False
    )
    return bars.select(
        "ts",
        log_return.alias("log_return"),
        log_return.rolling_std(config.vol_window).alias("volatility"),
        (gain / (gain + loss)).fill_nan(0.5).alias("rsi"),
        ((pl.col("high") - pl.col("low")) / close).alias("range"),
        ((close - pl.col("open")) / pl.col("open")).alias("body"),
        ((pl.col("volume") + 1) / (pl.col("volume").shift(1) + 1)).log().alias("volume_change"),
        ((macd - macd.ewm_mean(span=config.macd_signal, adjust=False)) / close).alias("macd_hist"),
        (close / close.rolling_mean(config.ma_window) - 1).alias("ma_distance"),
    )


def _wilder(values: pl.Expr, period: int) -> pl.Expr:
    """Wilder's smoothing of ``values``: an exponential average with alpha = 1 / ``period``."""
    return values.ewm_mean(alpha=1 / period, adjust=False)


def compute_targets(bars: pl.DataFrame, config: FeatureConfig) -> pl.DataFrame:
    """Targets of the window ending at each bar t, all from bars after t.

    ``next_return`` = r(t+1); ``direction`` = 1 if r(t+1) > 0 else 0;
    ``future_vol`` = sqrt(mean(r(t+1)^2 .. r(t+h)^2)), the realised volatility of the next h bars.
    The last h rows are null: their future has not happened.
    """
    log_return = (pl.col("close") / pl.col("close").shift(1)).log()
    return bars.select(
        "ts",
        log_return.shift(-1).alias("next_return"),
        (log_return.shift(-1) > 0).cast(pl.Float32).alias("direction"),
        (log_return.pow(2).rolling_mean(config.horizon).shift(-config.horizon).sqrt()).alias(
            "future_vol"
        ),
    )


@dataclass(frozen=True)
class Windows:
    """Model inputs and targets, one row per window.

    Attributes
    ----------
    x
        (n, seq_len, n_features) unscaled features; window i's last bar is ``end_ts[i]``.
    next_return, direction, future_vol
        (n,) targets of each window.
    trailing_vol
        (n,) realised volatility of the window's last ``horizon`` returns: the naive forecast.
    end_ts
        (n,) bar time of each window's last bar.
    """

    x: np.ndarray
    next_return: np.ndarray
    direction: np.ndarray
    future_vol: np.ndarray
    trailing_vol: np.ndarray
    end_ts: np.ndarray

    def __len__(self) -> int:
        return len(self.x)

    def take(self, index: np.ndarray) -> "Windows":
        """The windows at ``index`` (e.g. one split)."""
        return Windows(*(getattr(self, f)[index] for f in self.__dataclass_fields__))


def make_windows(bars: pl.DataFrame, config: FeatureConfig) -> Windows:
    """Every complete window of one series: features warm, targets known.

    Built with a strided view, not a loop over windows.
    """
    features = compute_features(bars, config).slice(config.warmup)
    targets = compute_targets(bars, config).slice(config.warmup)
    values = features.select(FEATURES).to_numpy().astype(np.float32)
    if np.isnan(values).any() or len(values) < config.seq_len:
        bad = "non-finite features" if len(values) >= config.seq_len else "too few bars"
        raise ValueError(f"cannot build windows: {bad} ({len(bars)} bars, warm-up {config.warmup})")
    # windows[i] covers bars i .. i + seq_len - 1 (after warm-up): its last bar is i + seq_len - 1.
    windows = sliding_window_view(values, (config.seq_len, len(FEATURES)))[:, 0]
    end = np.arange(config.seq_len - 1, len(values))
    known = targets["future_vol"].is_not_null().to_numpy()[end]
    end = end[known]
    squared = features["log_return"].pow(2).rolling_mean(config.horizon).sqrt().to_numpy()
    return Windows(
        x=windows[end - (config.seq_len - 1)],
        next_return=targets["next_return"].to_numpy()[end].astype(np.float32),
        direction=targets["direction"].to_numpy()[end].astype(np.float32),
        future_vol=targets["future_vol"].to_numpy()[end].astype(np.float32),
        trailing_vol=squared[end].astype(np.float32),
        end_ts=features["ts"].to_numpy()[end],
    )


@dataclass(frozen=True)
class Split:
    """Window indices of each part, in time order, with embargo gaps between them."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def chronological_split(
    n_windows: int, embargo: int, val_fraction: float = 0.15, test_fraction: float = 0.15
) -> Split:
    """Split consecutive windows into train, validation and test, dropping ``embargo`` between.

    Consecutive windows end on consecutive bars, so a gap of ``embargo`` windows is
    a gap of ``embargo`` bars between the last train window and the first validation one.
    """
    usable = n_windows - 2 * embargo
    n_val, n_test = int(usable * val_fraction), int(usable * test_fraction)
    n_train = usable - n_val - n_test
    if min(n_train, n_val, n_test) < 1:
        raise ValueError(f"{n_windows} windows are too few to split with an embargo of {embargo}")
    val_start = n_train + embargo
    test_start = val_start + n_val + embargo
    return Split(
        train=np.arange(0, n_train),
        val=np.arange(val_start, val_start + n_val),
        test=np.arange(test_start, test_start + n_test),
    )


@dataclass(frozen=True)
class Scaler:
    """Per-feature standardisation, fitted on training windows only."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, train_x: np.ndarray) -> "Scaler":
        """Fit on (n, seq_len, n_features) training windows."""
        flat = train_x.reshape(-1, train_x.shape[-1])
        return cls(mean=flat.mean(axis=0), std=np.maximum(flat.std(axis=0), 1e-8))

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Standardise (..., n_features) values with the fitted mean and std, as float32."""
        scaled: np.ndarray = (x - self.mean) / self.std
        return scaled.astype(np.float32)
