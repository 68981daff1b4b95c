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


def test_scaler_uses_training_windows_only() -> None:
    bars = random_bars(400)
    windows = make_windows(bars, CONFIG)
    split = chronological_split(len(windows), CONFIG.embargo)
    scaler = Scaler.fit(windows.take(split.train).x)
    wild = windows.take(split.test).x * 1000
    assert np.allclose(scaler.mean, Scaler.fit(windows.take(split.train).x).mean)
    assert not np.allclose(
        scaler.mean, Scaler.fit(np.concatenate([windows.take(split.train).x, wild])).mean
    )
    scaled = scaler.transform(windows.take(split.train).x).reshape(-1, len(FEATURES))
    np.testing.assert_allclose(scaled.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(scaled.std(axis=0), 1, atol=1e-3)


def test_too_few_bars_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="too few bars"):
        make_windows(random_bars(20), CONFIG)
