"""The series catalogue: which series a pipeline keeps, from which sources, trained how.

A user describes their pipeline in one YAML file instead of Python; the nightly
flow, ``attnviz ingest``, the deployments of ``prefect.yaml`` and ``attnviz serve``
all read it. The committed default, ``catalogues/sample.yaml``, keeps the sample data, so
nothing reaches a network until a user names a live source; ``catalogues/live.yaml``
is a commented example for Bybit and US stocks.

The file has two sections::

    sources:                 # options per source, shared by its series
      bybit: {category: linear}
    groups:                  # series trained with the same settings
      crypto-hourly:
        training: {epochs: 20}
        series:
          - {source: bybit, symbol: BTCUSDT, interval: 1h, start: 2024-01-01}

A mistake is a :class:`CatalogueError` that names the file, the line and the field
(``catalogue.yaml, line 7, groups.crypto-hourly.series[0].interval: unknown
interval '1hr'``), before any work starts.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from attnviz.analysis import AnalysisConfig
from attnviz.comparison import ComparisonConfig
from attnviz.features import FeatureConfig
from attnviz.model import ModelConfig
from attnviz.series import Interval, Moment, Series, Symbol
from attnviz.train import TrainConfig

# Names a user may give a group: short, and safe in logs and task names.
GroupName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class CatalogueError(ValueError):
    """A catalogue file that cannot be used; the message names the file, line and field."""


class _Strict(BaseModel):
    # Unknown keys are mistakes (a misspelt option would otherwise be silently ignored).
    model_config = ConfigDict(extra="forbid", frozen=True)


class Entry(_Strict):
    """One series of the catalogue and how to read it.

    Attributes
    ----------
    source, symbol, interval
        The series (see :class:`attnviz.series.Series`).
    options
        Options of the source for this series, over the source's shared options,
        e.g. ``{"path": "bars/"}`` for files or ``{"category": "spot"}`` for Bybit.
    start
        Where a series with nothing stored starts (default: ``lookback_bars`` back
        from the as-of, or all the source has); a date or a time without a zone is UTC.
    lookback_bars
        Without ``start``: how many bars back from the as-of a new series starts.
    """

    source: str
    symbol: Symbol
    interval: Interval = "1d"
    options: dict[str, Any] = Field(default_factory=dict)
    start: Moment | None = None
    lookback_bars: Annotated[int, Field(ge=1)] | None = None

    @property
    def series(self) -> Series:
        """The series this entry keeps."""
        return Series(source=self.source, symbol=self.symbol, interval=self.interval)


class Group(_Strict):
    """Series trained with the same settings.

    Attributes
    ----------
    series
        The group's series.
    pool
        Train one model per interval on all the group's series of that interval,
        instead of one model per series.
    features, model, training
        Window, architecture and training settings of the group's models.
    promotion_margin
        A new model replaces the active one unless its validation loss is worse by more than this.
    """

    series: Annotated[list[Entry], Field(min_length=1)]
    pool: bool = False
    features: FeatureConfig = FeatureConfig()
    model: ModelConfig = ModelConfig()
    training: TrainConfig = TrainConfig()
    promotion_margin: Annotated[float, Field(ge=0)] = 0.05


@dataclass(frozen=True)
class ModelSpec:
    """One model a catalogue asks for: the series it trains on and its group's settings."""

    series: list[Series]
    group: Group


def model_groups(series: list[Series], pool: bool) -> dict[str, list[Series]]:
    """Model name -> the series it trains on: one per series, or one per interval when pooled."""
    if not pool:
        return {one.label: [one] for one in series}
    groups: dict[str, list[Series]] = {}
    for one in series:
        groups.setdefault(one.interval, []).append(one)
    return {"+".join(one.label for one in group): group for group in groups.values()}


class Catalogue(_Strict):
    """Every series a pipeline keeps, grouped by training settings, with source options.

    Attributes
    ----------
    sources
        Options per source name, shared by its series (an entry's ``options`` win).
    groups
        Group name -> :class:`Group`.
    analysis
        Thresholds and batch size of the attention analytics.
    backtest
        Costs, sizing, the filter grid and the draws of the strategy comparison.
    """

    sources: dict[str, dict[str, Any]] = Field(default_factory=dict)
    groups: Annotated[dict[GroupName, Group], Field(min_length=1)]
    analysis: AnalysisConfig = AnalysisConfig()
    backtest: ComparisonConfig = ComparisonConfig()

    @model_validator(mode="after")
    def _known_sources_and_unique_series(self) -> "Catalogue":
        from attnviz.sources import SOURCES

        for name in self.sources:
            if name not in SOURCES:
                raise ValueError(
                    f"unknown source {name!r} in sources; expected one of {sorted(SOURCES)}"
                )
        seen: dict[Series, str] = {}
        for group_name, group in self.groups.items():
            for entry in group.series:
                if entry.source not in SOURCES:
                    raise ValueError(
                        f"{entry.series.label}: unknown source {entry.source!r}; "
                        f"expected one of {sorted(SOURCES)}"
                    )
                if entry.series in seen:
                    # Bars are keyed by (source, symbol, interval): both would write one series.
                    raise ValueError(
                        f"{entry.series.label} is listed twice (groups {seen[entry.series]!r} and "
                        f"{group_name!r}); a series is kept once"
                    )
                seen[entry.series] = group_name
        return self

    @property
    def entries(self) -> list[Entry]:
        """Every entry, group by group."""
        return [entry for group in self.groups.values() for entry in group.series]

    def models(self, symbols: Sequence[str] | None = None) -> dict[str, ModelSpec]:
        """Model name -> what it trains on and how, over every group.

        With ``symbols``, only the models of those symbols (a pooled model whose series
        include one of them).

        Raises
        ------
        CatalogueError
            If a symbol asked for matches no entry.
        """
        self.select(symbols=symbols)  # a symbol it lacks is refused, named
        return {
            name: ModelSpec(members, group)
            for group in self.groups.values()
            for name, members in model_groups(
                [entry.series for entry in group.series], group.pool
            ).items()
            if not symbols or any(one.symbol in symbols for one in members)
        }

    def options(self, entry: Entry) -> dict[str, Any]:
        """The source options of ``entry``: its source's shared options, then its own."""
        return {**self.sources.get(entry.source, {}), **entry.options}

    def select(
        self,
        *,
        sources: Sequence[str] | None = None,
        symbols: Sequence[str] | None = None,
        intervals: Sequence[str] | None = None,
    ) -> list[Entry]:
        """The entries matching every filter given (``None``: no filter), ready to fetch.

        Each comes with its source's shared options under its own (:meth:`options`).

        Raises
        ------
        CatalogueError
            If a symbol asked for matches no entry.
        """
        chosen = [
            entry.model_copy(update={"options": self.options(entry)})
            for entry in self.entries
            if (sources is None or entry.source in sources)
            and (intervals is None or entry.interval in intervals)
            and (symbols is None or entry.symbol in symbols)
        ]
        missing = sorted(set(symbols or ()) - {entry.symbol for entry in chosen})
        if missing:
            held = sorted({entry.series.label for entry in self.entries})
            raise CatalogueError(f"no series {', '.join(missing)} in the catalogue; it has {held}")
        return chosen


def batches(entries: Sequence[Entry]) -> list[list[Entry]]:
    """``entries`` in groups that one request can serve, in order of first appearance.

    A source with a ``fetch_many`` method (yfinance) serves several tickers of one
    interval and the same options at once; every other entry is a group of its own.
    """
    from attnviz.sources import SOURCES, is_source_name

    groups: dict[object, list[Entry]] = {}
    for index, entry in enumerate(entries):
        if is_source_name(entry.source) and hasattr(SOURCES[entry.source], "fetch_many"):
            key: object = (
                entry.source,
                entry.interval,
                json.dumps(entry.options, sort_keys=True, default=str),
            )
        else:
            key = index
        groups.setdefault(key, []).append(entry)
    return list(groups.values())


def load_catalogue(path: Path | str) -> Catalogue:
    """Read and validate a catalogue file.

    Raises
    ------
    CatalogueError
        If the file cannot be read, is not YAML, or a field is wrong: the message names
        the file, the line and the field.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CatalogueError(f"cannot read catalogue {path}: {error}") from None
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise CatalogueError(f"{path}: not valid YAML: {error}") from None
    twice = _repeated_key(root)
    if twice is not None:  # YAML would keep the last silently: a copied group would vanish
        line, key = twice
        raise CatalogueError(f"{path}, line {line}: {key!r} is given twice in the same mapping")
    if not isinstance(data, dict):
        raise CatalogueError(
            f"{path}: expected a mapping with 'groups' (and 'sources'), got {data!r}"
        )
    try:
        return Catalogue.model_validate(data)
    except ValidationError as error:
        problems = [
            f"{path}, line {_line(root, loc)}, {_dotted(loc) or 'top level'}: {problem['msg']}"
            for problem in error.errors(include_url=False)
            for loc in [problem["loc"]]
        ]
        raise CatalogueError("\n".join(problems)) from None


def _repeated_key(node: yaml.Node | None) -> tuple[int, str] | None:
    """The line and name of the first key that a mapping under ``node`` gives twice."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if key.value in seen:
                return key.start_mark.line + 1, key.value
            seen.add(key.value)
            found = _repeated_key(value)
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            found = _repeated_key(item)
            if found:
                return found
    return None


def _dotted(loc: Sequence[int | str]) -> str:
    """``('groups', 'a', 'series', 0, 'interval')`` -> ``groups.a.series[0].interval``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def _line(node: yaml.Node | None, loc: Sequence[int | str]) -> int:
    """The 1-based line of the deepest YAML node on the path ``loc`` (the field or its parent)."""
    line = 1 if node is None else node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            values: Mapping[Any, yaml.Node] = {key.value: value for key, value in node.value}
            if part not in values:
                break
            node = values[part]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                break
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line
