"""Trading signals from the model's predictions, gated by how focused its attention is.

A rule turns each evaluation window into a signal, decided at the CLOSE of the window's last
bar t from what the model predicted there:

* LONG (+1) when the predicted up-probability is above ``up`` and the predicted return above
  ``min_return``;
* SHORT (-1) when the up-probability is below ``down`` and the predicted return below
  ``-min_return``;
* HOLD (0) otherwise, and also where the gate is shut: the rule's confidence column is below
  its ``threshold``, the window is in collapse (with ``skip_collapse``), or any column the rule
  reads is NaN or missing.

The backtest (``attnviz/backtest.py``) fills a signal decided at the close of bar t at the OPEN
of bar t + 1 and marks it to market at every close after, so no position ever trades on the bar
it was predicted from.

The rules compared every night: the Transformer's own rule ungated (``unfiltered``), the same
rule gated on calibrated confidence at several percentiles (``filtered_p70``: trade only in the
30% of windows where attention is most focused, ranked against the validation windows), and
the chapter's rule with the chapter's numbers, gated on the raw seed confidence. The chapter's
thresholds sit above almost every value the seed confidence takes, so it hardly ever trades;
it gets no special case here, the backtest shows it.

Which threshold to trust is decided on the validation windows, never on the test windows:
:func:`select_on_validation` is handed the validation frame alone; the test windows
reach only :func:`signals` of the rules, after the choice.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

Signal = np.ndarray  # int8 in {-1, 0, 1}: SHORT, HOLD, LONG, one per window
SHORT, HOLD, LONG = -1, 0, 1

DEFAULT_PERCENTILES = (50.0, 60.0, 70.0, 80.0, 90.0)


@dataclass(frozen=True)
class Rule:
    """A trading rule: direction from the predictions, then an optional confidence gate.

    Attributes
    ----------
    name
        How the strategy is called in tables and figures.
    up, down
        LONG needs a predicted up-probability above ``up``, SHORT one below ``down``.
    min_return
        ... and a predicted return beyond it in the same direction (``> min_return`` for LONG,
        ``< -min_return`` for SHORT).
    confidence
        The gate's column: ``"calibrated"`` (``calibrated_confidence``, a percentile in
        [0, 1]), ``"seed"`` (``seed_confidence``, the chapter's raw confidence) or ``None``
        for no gate.
    threshold
        Trade only where that confidence is at least this.
    skip_collapse
        Also hold where the window's ``collapse`` flag is on.

    Raises
    ------
    ValueError
        If ``min_return`` is negative (a window could then be both LONG and SHORT) or a
        threshold is given without a confidence column to apply it to.
    """

    name: str
    up: float = 0.5
    down: float = 0.5
    min_return: float = 0.0
    confidence: Literal["calibrated", "seed"] | None = None
    threshold: float = 0.0
    skip_collapse: bool = False

    def __post_init__(self) -> None:
        if self.min_return < 0:
            raise ValueError(f"rule {self.name}: min_return must be >= 0, got {self.min_return}")
        if self.confidence is None and self.threshold != 0:
            raise ValueError(
                f"rule {self.name}: threshold {self.threshold} needs a confidence column to gate on"
            )

    @property
    def columns(self) -> tuple[str, ...]:
        """The ``attention_window`` columns this rule reads."""
        gate = () if self.confidence is None else (f"{self.confidence}_confidence",)
        collapse = ("collapse",) if self.skip_collapse else ()
        return ("pred_up_prob", "pred_return", *gate, *collapse)


UNFILTERED = Rule("unfiltered")

CHAPTER_RULES: tuple[Rule, ...] = tuple(
    Rule(
        f"chapter_seed_{threshold:g}",
        up=0.6,
        down=0.4,
        min_return=0.001,
        confidence="seed",
        threshold=threshold,
    )
    for threshold in (0.3, 0.5, 0.7)
)


def filtered_rules(percentiles: Sequence[float], *, skip_collapse: bool = False) -> list[Rule]:
    """The Transformer's rule gated on calibrated confidence at each percentile.

    Parameters
    ----------
    percentiles
        Gate levels in [0, 100]. Calibrated confidence is itself a percentile in [0, 1], so
        percentile 70 trades where it is at least 0.70; the rule is named ``filtered_p70``.
    skip_collapse
        Also hold in collapse; the names then end in ``_skip_collapse``.

    Returns
    -------
    list[Rule]
        One rule per percentile, in the order given.

    Raises
    ------
    ValueError
        If a percentile is outside [0, 100].
    """
    outside = [p for p in percentiles if not 0 <= p <= 100]
    if outside:
        raise ValueError(f"percentiles must lie in [0, 100], got {outside}")
    suffix = "_skip_collapse" if skip_collapse else ""
    return [
        Rule(
            f"filtered_p{p:g}{suffix}",
            confidence="calibrated",
            threshold=p / 100,
            skip_collapse=skip_collapse,
        )
        for p in percentiles
    ]


def signals(windows: pl.DataFrame, rule: Rule) -> Signal:
    """The rule's signal for each window, decided at the close of the window's last bar.

    Parameters
    ----------
    windows
        ``attention_window``-shaped rows, oldest first, with the columns the rule reads
        (``Rule.columns``: ``pred_up_prob``, ``pred_return``, and its confidence column and
        ``collapse`` where it gates on them). Nulls count as NaN.
    rule
        The rule to apply.

    Returns
    -------
    Signal
        (n,) int8: LONG (1), SHORT (-1) or HOLD (0), one per row.

    Raises
    ------
    ValueError
        If a column the rule reads is missing.
    """
    inputs = _inputs(windows, rule)
    up_prob, predicted = inputs["pred_up_prob"], inputs["pred_return"]
    long = (up_prob > rule.up) & (predicted > rule.min_return)
    short = (up_prob < rule.down) & (predicted < -rule.min_return)
    open_gate = _gate(inputs, rule, windows.height)
    signal = np.select([long & open_gate, short & open_gate], [LONG, SHORT], HOLD)
    return signal.astype(np.int8)


def gate_open(windows: pl.DataFrame, rule: Rule) -> np.ndarray:
    """Where the rule's gate lets a trade through: (n,) bool, all True for an ungated rule.

    Raises
    ------
    ValueError
        If a column the rule reads is missing.
    """
    return _gate(_inputs(windows, rule), rule, windows.height)


def _inputs(windows: pl.DataFrame, rule: Rule) -> dict[str, np.ndarray]:
    """The columns the rule reads, as float64 with nulls as NaN (collapse as 0/1)."""
    missing = [column for column in rule.columns if column not in windows.columns]
    if missing:
        raise ValueError(f"rule {rule.name} needs columns missing from the windows: {missing}")
    # Each condition on these is a comparison that a NaN makes False, so a NaN input neither
    # trades nor opens the gate.
    return {
        column: windows[column].cast(pl.Float64).fill_null(np.nan).to_numpy()
        for column in rule.columns
    }


def _gate(inputs: dict[str, np.ndarray], rule: Rule, n: int) -> np.ndarray:
    """The gate of :func:`gate_open` over inputs already read."""
    open_gate = np.ones(n, dtype=bool)
    if rule.confidence is not None:
        open_gate &= inputs[f"{rule.confidence}_confidence"] >= rule.threshold
    if rule.skip_collapse:
        open_gate &= inputs["collapse"] == 0
    return open_gate


def choose(rules: Sequence[Rule], score: Callable[[Rule], float]) -> Rule:
    """The rule with the best finite score; ties go to the lower threshold (it trades more).

    Parameters
    ----------
    rules
        The candidates. Among rules with equal score and threshold the first one wins.
    score
        Higher is better; NaN or infinite scores (a rule that never traded has no Sharpe)
        never win. It must see only the validation windows: :func:`select_on_validation`
        builds it that way.

    Returns
    -------
    Rule
        The chosen rule.

    Raises
    ------
    ValueError
        If no rule has a finite score.
    """
    scored = [(score(rule), rule) for rule in rules]
    finite = [(value, rule) for value, rule in scored if math.isfinite(value)]
    if not finite:
        raise ValueError(f"no rule has a finite score among {[rule.name for rule in rules]}")
    best = max(value for value, _ in finite)
    return min((rule for value, rule in finite if value == best), key=lambda rule: rule.threshold)


def select_on_validation(
    validation: pl.DataFrame,
    rules: Sequence[Rule],
    evaluate: Callable[[pl.DataFrame, Rule], float],
) -> Rule:
    """The rule that scores best on the validation windows, the only windows it is given.

    Parameters
    ----------
    validation
        The windows just before the evaluation period, ``attention_window``-shaped.
    rules
        The candidates, as for :func:`choose`.
    evaluate
        ``evaluate(windows, rule)``: the rule's score on those windows, e.g. the Sharpe of
        its backtest over their bars. It is only ever called with ``validation``.

    Returns
    -------
    Rule
        The chosen rule, as for :func:`choose`.
    """
    return choose(rules, lambda rule: evaluate(validation, rule))
