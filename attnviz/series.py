"""A series names one stream of bars; the nightly job works through a list of them."""

from pydantic import BaseModel, ConfigDict, field_validator

from attnviz.bars import check_symbol, interval_duration


class Series(BaseModel):
    """One (source, symbol, interval) stream of bars, validated on creation.

    Prefect shows a list of these as a form in the UI; a mistyped symbol or
    interval fails there with the reason, before any work starts.
    """

    model_config = ConfigDict(frozen=True)

    source: str = "sample"
    symbol: str
    interval: str = "1d"

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, value: str) -> str:
        return check_symbol(value)

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        interval_duration(value)
        return value

    @property
    def key(self) -> tuple[str, str, str]:
        """(source, symbol, interval), the warehouse key prefix."""
        return (self.source, self.symbol, self.interval)

    @property
    def label(self) -> str:
        """Short name for logs and task runs, e.g. ``sample/AAPL/1d``."""
        return "/".join(self.key)


SAMPLE_SERIES: list[Series] = [
    *(Series(symbol=symbol, interval="1d") for symbol in ("AAPL", "GOOG", "IBM", "MSFT")),
    Series(symbol="EURUSD", interval="1h"),
]
