from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from attnviz.features import (
    FEATURES,
    FeatureConfig,
    Scaler,
    chronological_split,
    compute_features,
    compute_targets,
    make_windows,
)
from attnviz.model import ModelConfig
from attnviz.train import TrainConfig, fit_series

CONFIG = FeatureConfig(
    seq_len=10,
    horizon=3,
    vol_window=5,
    rsi_period=4,
    ma_window=5,
    macd_fast=3,
    macd_slow=6,
    macd_signal=3,
)


def random_bars(n: int = 200, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = close * np.exp(rng.normal(0, 0.003, n))
    return pl.DataFrame(
        {
            "ts": [datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=i) for i in range(n)],
            "open": open_,
            "high": np.maximum(open_, close) * 1.002,
            "low": np.minimum(open_, close) * 0.998,
            "close": close,
            "volume": rng.integers(0, 1000, n).astype(float),
        }
    )


def test_features_are_the_documented_eight_and_finite_after_warmup() -> None:
    features = compute_features(random_bars(), CONFIG)
    assert features.columns == ["ts", *FEATURES]
    warm = features.slice(CONFIG.warmup).select(FEATURES).to_numpy()
    assert np.isfinite(warm).all()
    rsi = features["rsi"].slice(CONFIG.warmup)
    assert rsi.min() >= 0 and rsi.max() <= 1


def test_features_match_hand_computed_values() -> None:
    bars = random_bars(60)
    features = compute_features(bars, CONFIG).row(30, named=True)
    close, t = bars["close"].to_numpy(), 30
    returns = np.log(close[1:] / close[:-1])
    assert features["log_return"] == pytest.approx(np.log(close[t] / close[t - 1]))
    assert features["volatility"] == pytest.approx(np.std(returns[t - 5 : t], ddof=1))
    assert features["ma_distance"] == pytest.approx(close[t] / close[t - 4 : t + 1].mean() - 1)
    assert features["range"] == pytest.approx((bars["high"][t] - bars["low"][t]) / close[t])


def test_changing_any_bar_after_t_leaves_every_window_up_to_t_unchanged() -> None:
    bars = random_bars()
    before = make_windows(bars, CONFIG)
    t = 120  # bar index; change every bar after it
    changed = bars.with_columns(
        [
            pl.when(pl.int_range(pl.len()) > t).then(pl.col(c) * 3.7).otherwise(pl.col(c))
            for c in ("open", "high", "low", "close", "volume")
        ]
    )
    after = make_windows(changed, CONFIG)
    cutoff = bars["ts"][t].replace(tzinfo=None)
    upto = before.end_ts <= np.datetime64(cutoff)
    assert upto.sum() > 10
    np.testing.assert_array_equal(before.x[upto], after.x[upto])
    # ... while windows after t do see the change, so the comparison could fail.
    assert not np.array_equal(before.x[~upto][-1], after.x[~upto][-1])


def test_targets_are_exactly_the_future_values() -> None:
    bars = random_bars()
    windows = make_windows(bars, CONFIG)
    close = bars["close"].to_numpy()
    ts = bars["ts"].dt.replace_time_zone(None).to_numpy()
    for i in (0, 17, len(windows) - 1):
        t = int(np.flatnonzero(ts == windows.end_ts[i])[0])
        future = np.log(close[t + 1 : t + 4] / close[t : t + 3])
        assert windows.next_return[i] == pytest.approx(future[0], rel=1e-5)
        assert windows.direction[i] == float(future[0] > 0)
        assert windows.future_vol[i] == pytest.approx(np.sqrt(np.mean(future**2)), rel=1e-5)
        # The window's own last input is r(t), not r(t+1).
        assert windows.x[i, -1, 0] == pytest.approx(np.log(close[t] / close[t - 1]), rel=1e-5)
    # The last windows stop where the horizon runs out.
    assert int(np.flatnonzero(ts == windows.end_ts[-1])[0]) == len(bars) - 1 - CONFIG.horizon
    targets = compute_targets(bars, CONFIG)
    assert targets["future_vol"].tail(CONFIG.horizon).is_null().all()


def test_split_is_chronological_with_an_embargo_of_a_window_plus_horizon() -> None:
    split = chronological_split(500, CONFIG.embargo)
    assert split.train[-1] < split.val[0] < split.val[-1] < split.test[0]
    assert split.val[0] - split.train[-1] == CONFIG.embargo + 1
    assert split.test[0] - split.val[-1] == CONFIG.embargo + 1
    # No bar is shared: a train window's targets end before the first validation input.
    last_train_target = split.train[-1] + CONFIG.horizon
    first_val_input = split.val[0] - (CONFIG.seq_len - 1)
    assert last_train_target < first_val_input
    with pytest.raises(ValueError, match="too few to split"):
        chronological_split(30, CONFIG.embargo)


def fitted_by_the_recipe(bars: pl.DataFrame) -> tuple[Scaler, float]:
    """The scaler and target scale the training recipe (``fit_series``) fits on ``bars``."""
    tiny = ModelConfig(d_model=8, n_heads=2, n_layers=1, dropout=0.0)
    fit = fit_series([bars], CONFIG, tiny, TrainConfig(epochs=1), log=lambda _: None)
    return fit.trained.scaler, fit.trained.target_scale


def times(bars: pl.DataFrame, prices: np.ndarray, volume: np.ndarray) -> pl.DataFrame:
    """``bars`` with each bar's prices times its factor in ``prices``, its volume in ``volume``."""
    return bars.with_columns(
        *(pl.col(column) * prices for column in ("open", "high", "low", "close")),
        pl.col("volume") * volume,
    )


def test_scaler_uses_training_windows_only() -> None:
    bars = random_bars(400)
    windows = make_windows(bars, CONFIG)
    split = chronological_split(len(windows), CONFIG.embargo)
    ts = bars["ts"].dt.replace_time_zone(None).to_numpy()
    # The last bar a training window reads, its targets included.
    last_read = int(np.flatnonzero(ts == windows.end_ts[split.train[-1]])[0]) + CONFIG.horizon
    scaler, target_scale = fitted_by_the_recipe(bars)

    # Every bar after it goes wild: a 20% random walk on the prices, a thousand times the volume.
    later = np.arange(bars.height) > last_read
    walk = np.exp(np.cumsum(np.random.default_rng(1).normal(0, 0.2, bars.height) * later))
    wild = times(bars, walk, np.where(later, 1000.0, 1.0))
    wild_windows = make_windows(wild, CONFIG)
    assert not np.allclose(wild_windows.x[split.val], windows.x[split.val])
    assert not np.allclose(wild_windows.x[split.test], windows.x[split.test])
    assert not np.allclose(Scaler.fit(wild_windows.x).std, Scaler.fit(windows.x).std)
    wild_scaler, wild_target_scale = fitted_by_the_recipe(wild)
    np.testing.assert_array_equal(wild_scaler.mean, scaler.mean)
    np.testing.assert_array_equal(wild_scaler.std, scaler.std)
    assert wild_target_scale == target_scale

    # ... while a 5% jump at one training bar moves it: it is fitted on the training part.
    jump = np.where(np.arange(bars.height) >= last_read // 2, 1.05, 1.0)
    jumped_scaler, _ = fitted_by_the_recipe(times(bars, jump, np.ones(bars.height)))
    assert not np.allclose(jumped_scaler.mean, scaler.mean)
    scaled = scaler.transform(windows.take(split.train).x).reshape(-1, len(FEATURES))
    np.testing.assert_allclose(scaled.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(scaled.std(axis=0), 1, atol=1e-3)


def test_too_few_bars_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="too few bars"):
        make_windows(random_bars(20), CONFIG)
