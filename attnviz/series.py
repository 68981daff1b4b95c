"""A series names one stream of bars; the nightly job works through a list of them."""

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

from attnviz.bars import check_interval, check_symbol

# Types of flow parameters: Prefect validates a run's parameters with them, so a
# mistyped symbol or interval fails before any work starts, with the reason in the log.
Symbol = Annotated[str, AfterValidator(check_symbol)]
Interval = Annotated[str, AfterValidator(check_interval)]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# A moment in time; one without a zone (a YAML date, a form field) is UTC, as on the CLI.
# Naive and aware datetimes cannot be compared: every moment a flow takes is made aware.
Moment = Annotated[datetime, AfterValidator(_aware)]


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
