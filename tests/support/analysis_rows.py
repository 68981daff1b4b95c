"""Analytics rows for warehouse tests: two windows of one series, in the tables' shapes."""

from datetime import UTC, datetime

import polars as pl

TS = [datetime(2024, 1, d, tzinfo=UTC) for d in (2, 3)]
SERIES = ("sample", "AAPL", "1d")


def frames(confidence: float) -> dict[str, pl.DataFrame]:
    window = pl.DataFrame(
        {
            "ts": TS,
            "seed_confidence": [confidence] * 2,
            "calibrated_confidence": [0.5, 0.6],
            "rollout_top_lags": [[0, 1], [1, 0]],
            "flow_top_lags": [[0, 1], [0, 1]],
            "has_attention_flow": [True, True],
            "jsd_prev_window": [None, 0.1],
            "topk_jaccard_prev_window": [None, 1.0],
            "spearman_prev_window": [None, 0.9],
            "jsd_prev_model": [None, None],
            "attention_ig_spearman": [0.2, 0.3],
            "has_integrated_gradients": [True, True],
            "head_gone_uniform": [False, False],
            "collapse": [False, True],
            "regime_change": [False, False],
            "pred_return": [0.0, 0.0],
            "pred_up_prob": [0.5, 0.5],
            "pred_vol": [0.01, 0.01],
            "next_return": [0.01, -0.01],
            "direction": [1.0, 0.0],
            "future_vol": [0.01, 0.02],
        },
        schema_overrides={
            "rollout_top_lags": pl.List(pl.Int32),
            "flow_top_lags": pl.List(pl.Int32),
        },
    )
    positions = pl.DataFrame(
        {"ts": TS, "lag": [0, 0], "method": "attention_flow", "score": [0.4, 0.5]}
    )
    return {"attention_window": window, "position_importance": positions}
