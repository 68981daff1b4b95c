"""Catalogue files for tests: one group of series with the given settings."""

from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import yaml

from attnviz import config
from attnviz.catalogue import load_catalogue
from attnviz.series import Series


def sample_series() -> list[Series]:
    """The series of the committed default catalogue (the sample data)."""
    return [entry.series for entry in load_catalogue(config.catalogue_path()).entries]


def write_catalogue(
    path: Path,
    series: Sequence[Series] | None = None,
    analysis: Any = None,
    backtest: Any = None,
    **group: Any,
) -> str:
    """Write a catalogue of one group, ``test``, and return its path.

    ``group`` holds the group's settings (``features``, ``model``, ``training`` as config
    dataclasses or dicts, ``pool``, ``promotion_margin``); ``series`` defaults to the sample's.
    """
    settings = {key: _as_yaml(value) for key, value in group.items()}
    members = [one.model_dump() for one in (series or sample_series())]
    document: dict[str, Any] = {"groups": {"test": {"series": members, **settings}}}
    if analysis is not None:
        document["analysis"] = _as_yaml(analysis)
    if backtest is not None:
        document["backtest"] = _as_yaml(backtest)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    load_catalogue(path)  # a test that writes a wrong catalogue by mistake fails here, plainly
    return str(path)


def _as_yaml(setting: Any) -> Any:
    """A config dataclass as the mapping a catalogue holds; any other setting as it is."""
    return asdict(setting) if is_dataclass(setting) and not isinstance(setting, type) else setting
