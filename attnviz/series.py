"""A series names one stream of bars; the nightly job works through a list of them."""

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

from attnviz.bars import check_interval, check_symbol

# Types of flow parameters: Prefect validates a run's parameters with them, so a
# mistyped symbol or interval fails before any work starts, with the reason in the log.
Symbol = Annotated[str, AfterValidator(check_symbol)]
Interval = Annotated[str, AfterValidator(check_interval)]


class Series(BaseModel):
    """One (source, symbol, interval) stream of bars, validated on creation.

    Prefect shows a list of these as a form in the UI; a mistyped symbol or
    interval fails there with the reason, before any work starts.
    """

    model_config = ConfigDict(frozen=True)

    source: str = "sample"
    symbol: Symbol
    interval: Interval = "1d"

    @property
    def key(self) -> tuple[str, str, str]:
        """(source, symbol, interval), the warehouse key prefix."""
        return (self.source, self.symbol, self.interval)

    @property
    def label(self) -> str:
        """Short name for logs and task runs, e.g. ``sample/AAPL/1d``."""
        return "/".join(self.key)
