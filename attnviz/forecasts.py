"""What the backtest of one series reads: the forecasts of its validation and test windows.

The test windows' rows are the analysis' own (``attention_window``: predictions, seed
and calibrated confidence, the collapse flag). The validation windows, on which the
filter's threshold is chosen, are not explained and so not in the attention tables:
here the active model forecasts them again from its checkpoint, with their seed and
calibrated confidence and the monitors fitted on them as the analysis fits them
(:func:`attnviz.analysis.fit_monitors`). The LSTM baseline forecasts both, when the
checkpoint keeps it.
"""

import polars as pl

from attnviz.analysis import AnalysisConfig, fit_monitors, reference_confidence
from attnviz.analysis_tables import utc
from attnviz.checkpoint import TrainedModel
from attnviz.comparison import SeriesForecasts
from attnviz.evaluation_period import evaluation_windows
from attnviz.features import Windows, make_windows
from attnviz.monitors import with_monitors
from attnviz.objective import Forecast
from attnviz.registry import Ranges


def series_forecasts(
    trained: TrainedModel,
    bars: pl.DataFrame,
    ranges: Ranges,
    evaluated: pl.DataFrame,
    label: str,
    config: AnalysisConfig,
) -> SeriesForecasts:
    """The forecasts a comparison of the series reads (:class:`attnviz.comparison.SeriesForecasts`).

    Parameters
    ----------
    trained
        The active model, its checkpoint loaded.
    bars
        Every bar of the series, oldest first.
    ranges
        The model's split of the series (its record's ``series_ranges[label]``).
    evaluated
        The analysis' ``attention_window`` rows of the series: the test windows.
    label
        The series, for messages.
    config
        The analysis settings the monitors are fitted with.

    Raises
    ------
    ValueError
        If no window of the series ends in the validation period any more.
    """
    split = evaluation_windows(make_windows(bars, trained.feature_config), ranges, label)
    validation = split.calibration
    reference = reference_confidence(trained, validation, config.batch_size)
    calibration = fit_monitors(reference, config)
    rows = _forecast_rows(validation, trained.predict(validation)).with_columns(
        pl.Series("seed_confidence", reference.mean(dim=(1, 2)).numpy()),
        pl.Series("head_gone_uniform", calibration.gone_uniform(reference).numpy()),
    )
    lstm_validation, lstm_test = (
        trained.predict_lstm(validation),
        trained.predict_lstm(split.evaluation),
    )
    return SeriesForecasts(
        validation=with_monitors(rows, calibration),
        test=evaluated,
        lstm_validation=None
        if lstm_validation is None
        else _forecast_rows(validation, lstm_validation),
        lstm_test=None
        if lstm_test is None
        # The analysis may be older than the bars: the LSTM trades the windows it explained.
        else _forecast_rows(split.evaluation, lstm_test).join(
            evaluated.select("ts"), on="ts", how="semi"
        ),
        bars=bars.select("ts", "open", "close"),
    )


def _forecast_rows(windows: Windows, forecast: Forecast) -> pl.DataFrame:
    """``attention_window``-shaped prediction columns of ``windows`` (DOUBLE, as stored)."""
    return pl.DataFrame(
        {
            "ts": utc(windows.end_ts),
            "pred_return": forecast.ret,
            "pred_up_prob": forecast.prob,
            "pred_vol": forecast.vol,
        },
        schema_overrides=dict.fromkeys(("pred_return", "pred_up_prob", "pred_vol"), pl.Float64),
    )
