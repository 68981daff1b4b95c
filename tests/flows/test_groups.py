from attnviz.series import Series
from flows.nightly import model_groups


def test_one_model_per_series_or_one_per_interval_when_pooled() -> None:
    series = [Series(symbol="AAPL"), Series(symbol="IBM"), Series(symbol="EURUSD", interval="1h")]
    assert list(model_groups(series, pool=False)) == [
        "sample/AAPL/1d",
        "sample/IBM/1d",
        "sample/EURUSD/1h",
    ]
    pooled = model_groups(series, pool=True)
    assert pooled == {"sample/AAPL/1d+sample/IBM/1d": series[:2], "sample/EURUSD/1h": series[2:]}
