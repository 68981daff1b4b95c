"""Attention analytics: pure, batched functions on attention tensors.

Notation. ``A`` has shape (B, L, H, T, T): windows, layers, heads, query rows i,
key columns j; every row sums to 1. The prediction is made from the last query
row, q = T - 1, so most measures read row q. Lag d = q - j counts bars back
from the window's last bar.

Every function takes a batch and none loops over windows in Python; the one
recursion is the CUSUM monitor, which walks a scalar series.
"""

import math

import torch

_LOG_FLOOR = -1e4
"""Below ln of the smallest float32 (about -104): 0 ln 0 taken as 0 * _LOG_FLOOR = 0."""

PATTERNS: tuple[str, ...] = ("uniform", "local", "recent", "periodic", "event", "mixed")
"""Head pattern classes, in the order their rules are tried (see :func:`pattern_class`)."""


def stack(attention: dict[str, torch.Tensor], out: torch.Tensor | None = None) -> torch.Tensor:
    """The model's ``{"layer_0": (B, H, T, T), ...}`` as one (B, L, H, T, T) tensor.

    Written into ``out`` (of that shape) if given, else into fresh memory.
    """
    layers = [attention[f"layer_{i}"] for i in range(len(attention))]
    return torch.stack(layers, dim=1, out=out)


def _entr(p: torch.Tensor) -> torch.Tensor:
    """-p ln p elementwise, 0 where p = 0."""
    terms: torch.Tensor = torch.special.entr(p)  # torch.special declares no types
    return terms


def entropy(p: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) over the last dimension; 0 log 0 = 0."""
    return _entr(p).sum(-1)


def mean_row_entropy(a: torch.Tensor, scratch: torch.Tensor | None = None) -> torch.Tensor:
    """Entropy averaged over all query rows, (..., T, T) -> (...).

    The mean of :func:`entropy` over the rows up to float rounding (the last bits), with
    the vectorised logarithm taken in place: ``torch.special.entr`` is a scalar loop, and
    over every row of a batch (11 M values at 256 windows of T = 60, 3 layers, 4 heads)
    this takes about half its time. The p ln p terms are written into ``scratch`` (of
    ``a``'s shape, overwritten) if given, else into fresh memory.
    """
    terms = torch.log(a, out=scratch).clamp_min_(_LOG_FLOOR).mul_(a)  # p ln p, 0 where p = 0
    return -terms.sum((-1, -2)) / a.shape[-2]


def confidence(p: torch.Tensor) -> torch.Tensor:
    """1 - entropy / ln T over the last dimension: 1 for one-hot, 0 for uniform attention."""
    return 1 - entropy(p) / math.log(p.shape[-1])


def head_confidence(a: torch.Tensor) -> torch.Tensor:
    """Row q's confidence of every head, (B, L, H, T, T) -> (B, L, H)."""
    return confidence(a[..., -1, :])


def expected_distance(row: torch.Tensor) -> torch.Tensor:
    """E[q - j] under an attention row over T positions: how many bars back it looks on average."""
    lags = torch.arange(row.shape[-1] - 1, -1, -1, dtype=row.dtype, device=row.device)
    return (row * lags).sum(-1)


def recent_mass(row: torch.Tensor, k: int) -> torch.Tensor:
    """Share of an attention row on the last ``k`` bars (lags 0 .. k-1)."""
    return row[..., -k:].sum(-1)


def head_mean(a: torch.Tensor) -> torch.Tensor:
    """(B, L, H, T, T) -> (B, L, T, T): the average over heads."""
    return a.mean(dim=2)


def mixed_attention(mean: torch.Tensor) -> torch.Tensor:
    """Head-averaged attention (B, L, T, T) mixed with the residual: 0.5 A + 0.5 I, renormalised.

    This is the per-layer matrix of attention rollout and attention flow (Abnar & Zuidema 2020):
    the residual connection carries half of each token's information straight through.
    """
    mixed = 0.5 * mean
    mixed.diagonal(dim1=-2, dim2=-1).add_(0.5)  # + 0.5 I, in place: one (B, L, T, T) copy
    return mixed.div_(mixed.sum(-1, keepdim=True))


def rollout(a: torch.Tensor) -> torch.Tensor:
    """Attention rollout, (B, L, H, T, T) -> (B, T, T): the product of mixed layers, last first.

    Row q is the importance of each input position for the prediction.
    """
    return rollout_mixed(mixed_attention(head_mean(a)))


def rollout_mixed(mixed: torch.Tensor) -> torch.Tensor:
    """Attention rollout from already mixed layers, (B, L, T, T) -> (B, T, T)."""
    result = mixed[:, 0]
    for layer in range(1, mixed.shape[1]):
        result = mixed[:, layer] @ result
    return result


def jensen_shannon(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence (nats, 0 to ln 2) over the last dimension, renormalised first."""
    p = p / p.sum(-1, keepdim=True)
    q = q / q.sum(-1, keepdim=True)
    m = 0.5 * (p + q)
    return entropy(m) - 0.5 * (entropy(p) + entropy(q))


def spearman(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Spearman rank correlation over the last dimension (values assumed untied)."""
    rx = x.argsort(-1).argsort(-1).to(torch.float64)
    ry = y.argsort(-1).argsort(-1).to(torch.float64)
    rx = rx - rx.mean(-1, keepdim=True)
    ry = ry - ry.mean(-1, keepdim=True)
    norms: torch.Tensor = rx.norm(dim=-1) * ry.norm(dim=-1)  # Tensor.norm declares no type
    return (rx * ry).sum(-1) / norms


def topk_jaccard(x: torch.Tensor, y: torch.Tensor, k: int, shift: int = 0) -> torch.Tensor:
    """Jaccard overlap of the top-``k`` positions of x and y, y's positions moved by ``shift``."""
    top_x = x.topk(k, dim=-1).indices
    top_y = y.topk(k, dim=-1).indices + shift
    shared = (top_x.unsqueeze(-1) == top_y.unsqueeze(-2)).any(-1).sum(-1)
    return shared / (2 * k - shared)


def consecutive_stability(
    rows: torch.Tensor, previous: torch.Tensor | None = None, k: int = 5
) -> dict[str, torch.Tensor]:
    """How much each window's attention row moved since the window one bar earlier.

    Window n covers bars s .. s+T-1 and window n-1 covers s-1 .. s+T-2, so
    position j of window n is position j+1 of window n-1. Both rows are
    compared on the T-1 bars they share, renormalised there.

    Parameters
    ----------
    rows
        (N, T) attention rows of consecutive windows (one bar apart), oldest first.
    previous
        (T,) row of the window just before ``rows[0]``, if known; else window 0 gets NaN.
    k
        Size of the top-k sets.

    Returns
    -------
    dict
        ``jsd``, ``topk_jaccard`` (on absolute bars) and ``spearman``, each (N,).
    """
    if previous is None:
        before, now = rows[:-1], rows[1:]
    else:
        before, now = torch.cat([previous[None], rows[:-1]]), rows
    shared_before, shared_now = before[:, 1:], now[:, :-1]
    scores = {
        "jsd": jensen_shannon(shared_before, shared_now),
        # Full rows, top sets moved onto absolute bars: position j now was j + 1 before.
        "topk_jaccard": topk_jaccard(before, now, k, shift=1).to(rows.dtype),
        "spearman": spearman(shared_before, shared_now).to(rows.dtype),
    }
    if previous is None:
        pad = torch.full((1,), torch.nan, dtype=rows.dtype)
        scores = {name: torch.cat([pad, value]) for name, value in scores.items()}
    return scores


def specialisation(a: torch.Tensor) -> torch.Tensor:
    """Mean pairwise Jensen-Shannon divergence between the heads' row q, (B, L, H, T, T) -> (B, L).

    0 when all heads attend alike; up to ln 2 when they attend to disjoint bars.
    """
    rows = a[..., -1, :]
    n_heads = rows.shape[2]
    first, second = torch.triu_indices(n_heads, n_heads, offset=1)
    return jensen_shannon(rows[:, :, first], rows[:, :, second]).mean(-1)


def pattern_class(
    a: torch.Tensor,
    events: torch.Tensor,
    k: int = 5,
    periods: tuple[int, ...] = (5, 24),
) -> torch.Tensor:
    """Pattern class of every head of every window, as an index into :data:`PATTERNS`.

    Rules, tried in order; the first that holds names the head:

    1. ``uniform``: row q's normalised entropy >= 0.95 (it barely prefers any bar).
    2. ``local``: on average over all query rows, >= 50% of the mass within one bar of the
       diagonal (|i - j| <= 1): each bar looks at its neighbours.
    3. ``recent``: >= 50% of row q's mass on the last ``k`` bars.
    4. ``periodic``: for some period P in ``periods`` (5 = a trading week of daily bars,
       24 = a day of hourly bars), row q's mass at lags P, 2P, ... is >= 40% and at least
       twice what uniform attention would put there.
    5. ``event``: >= 50% of row q's mass on event bars (``events``), and at least three
       times their share of the window.
    6. ``mixed``: none of the above.

    Parameters
    ----------
    a
        (B, L, H, T, T) attention.
    events
        (B, T) booleans: the window's high-volume or high-volatility bars.

    Returns
    -------
    torch.Tensor
        (B, L, H) integer codes.
    """
    size = a.shape[-1]
    row = a[..., -1, :]
    lags = size - 1 - torch.arange(size, device=a.device)
    # Mass within one bar of the diagonal, from the three diagonals alone (not a full pass).
    below, diagonal, above = (torch.diagonal(a, offset, -2, -1).sum(-1) for offset in (-1, 0, 1))
    band = (below + diagonal + above) / size
    rules = [
        confidence(row) <= 0.05,
        band >= 0.5,
        recent_mass(row, k) >= 0.5,
    ]
    periodic = torch.zeros_like(rules[0])
    for period in periods:
        on_period = (lags > 0) & (lags % period == 0)
        if on_period.any():
            mass = (row * on_period).sum(-1)
            periodic |= (mass >= 0.4) & (mass >= 2 * on_period.float().mean())
    rules.append(periodic)
    share = events.float().mean(-1)[:, None, None]
    event_mass = (row * events[:, None, None, :]).sum(-1)
    rules.append((event_mass >= 0.5) & (event_mass >= 3 * share) & (share > 0))
    code = torch.full(row.shape[:-1], PATTERNS.index("mixed"), dtype=torch.long, device=a.device)
    for index in reversed(range(len(rules))):
        code = torch.where(rules[index], index, code)
    return code


def calibrate(values: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Percentile of each value among ``reference`` values (e.g. training windows), in [0, 1]."""
    ordered = reference.sort().values
    return torch.searchsorted(ordered, values.contiguous(), right=True) / len(ordered)


def sustained(condition: torch.Tensor, n: int) -> torch.Tensor:
    """True where ``condition`` held for the last ``n`` consecutive entries (1-D, oldest first)."""
    counts = torch.cumsum(condition.long(), 0)
    window = counts - torch.cat([torch.zeros(n, dtype=counts.dtype), counts[:-n]])[: len(counts)]
    return window >= n


def cusum_changes(
    series: torch.Tensor,
    mean: float,
    std: float,
    k: float = 0.5,
    h: float = 5.0,
    relearn: int = 20,
) -> torch.Tensor:
    """Two-sided CUSUM change points of a 1-D series, starting from a reference mean and std.

    The standardised series z accumulates S+ = max(0, S+ + z - k) and
    S- = max(0, S- - z - k); an entry is flagged when either passes ``h``. With
    k = 0.5 and h = 5 a shift of one standard deviation is caught after about ten
    windows, and a stable series raises a false alarm about once in 930 windows
    per side, 465 for both (Montgomery, Introduction to Statistical Quality
    Control, ch. 9).

    After an alarm the level is learnt anew: the next ``relearn`` entries raise no
    alarm, and their mean becomes the reference. A lasting shift so raises one
    alarm instead of one every few windows, and the new reference, a mean of
    ``relearn`` entries, is off by only std / sqrt(relearn).
    """
    flags = []
    upper = lower = 0.0
    learning: list[float] | None = None  # entries seen since the last alarm, while relearning
    for value in series.tolist():
        if learning is not None:
            learning.append(value)
            if len(learning) == relearn:
                mean, learning = sum(learning) / relearn, None
            flags.append(False)
            continue
        z = (value - mean) / max(std, 1e-12)
        upper, lower = max(0.0, upper + z - k), max(0.0, lower - z - k)
        alarm = upper > h or lower > h
        if alarm:
            upper = lower = 0.0
            learning = []
        flags.append(alarm)
    return torch.tensor(flags, dtype=torch.bool)
