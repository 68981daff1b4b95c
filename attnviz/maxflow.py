"""Exact attention flow (Abnar & Zuidema, "Quantifying Attention Flow in Transformers", 2020).

A window's mixed attention ``mixed[l, i, j]`` (layer l, query i, key j; head-averaged,
residual-mixed, rows summing to 1) defines a layered graph: nodes (k, p) for layers
k = 0..L and positions p, and an edge (l, j) -> (l + 1, i) of capacity ``mixed[l, i, j]``.
The attention flow of input position j is the maximum-flow value from (0, j) to the output
node (L, q).

From a single source no other layer-0 node is reachable (not even in the residual graph),
and only (L, q) matters in the last layer, so the network is: source -> layer 1 -> ... ->
layer L - 1 -> sink. For L = 1 the flow is the attention row ``mixed[0, q]``; for L = 2 it
is ``sum_m min(mixed[0, m, j], mixed[1, q, m])``. Both are computed in closed form.

For L >= 3 every source needs a max flow of its own: flows from different sources compete
for the same edges, so one super-source feeding them all would give a different answer.
The T per-source networks are instead laid side by side as disjoint copies that share only
the source and the sink node. Flows in different copies cannot interact, so one max flow
of the union is a max flow of every copy, and scipy is called once per window (or per
chunk of copies, to bound memory) instead of T times.

scipy's Dinic is C and over 100x faster than networkx (an exact float max flow in Python
would not be), but it takes int32 capacities only. Rounding the capacities once to the
nearest multiple of 2**-30 moves the max flow by up to 2**-31 per edge of a minimum cut
(of the real or of the rounded network), and these cuts are large: ~120 edges per source
at T = 60 on random softmax attention, up to T**2 / 4 where two blocks of positions barely
attend to each other (at T = 120 such a window is off by 1.7e-6, see the tests). So each
copy keeps an interval [lower, upper] around its max flow, starting at
[0, min(out-capacity of the source, in-capacity of the sink)], and each round

* clips the residual capacities to ``gap``, the largest ``upper - lower`` of the copies. A
  max flow can be taken without cycles, so that no edge carries more than the flow value,
  which is at most ``gap``: clipping changes no max flow. It then floors them to integer
  units of ``gap / 2**30``, which keeps them within int32;
* runs Dinic. The capacities were floored, so the integer flow is feasible for the real
  ones: ``lower`` rises by its value;
* finds the nodes still reachable from the source in the integer residual graph. They
  define a minimum cut of the integer network, each of whose edges has less than one unit
  of real residual capacity left. That capacity bounds the flow still missing: ``upper``
  falls to ``lower`` plus it.

Each round shrinks the gap by a factor below (edges in the cut) / 2**30, and typical
windows need one. The result is the middle of [lower, upper] once the gap is at most
``_GAP``: within ``_GAP / 2 = 5e-8`` of the exact max flow, up to float64 rounding, and
never above the out-capacity of the source or the in-capacity of the sink.
"""

import operator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.sparse import csr_array
from scipy.sparse.csgraph import breadth_first_order, maximum_flow

_SOURCE, _SINK = 0, 1
_UNITS = 2**30  # integer units per remaining gap: capacities and flows stay within int32
_GAP = 1e-7  # refine until the max flow is bracketed this tightly
_ROW_TOLERANCE = 1e-4
_MAX_ENTRIES = 2**20  # CSR entries per max-flow problem: bounds its memory (~60 MB)


def attention_flow(mixed: np.ndarray, q: int = -1) -> np.ndarray:
    """Attention flow from every input position to the output node (L, q).

    Parameters
    ----------
    mixed
        (L, T, T) or (B, L, T, T) head-averaged, residual-mixed attention: ``mixed[l, i, j]``
        is how much query i of layer l attends to key j. Entries >= 0, rows sum to 1.
    q
        Output position, Python-style (the default -1 is the last position).

    Returns
    -------
    np.ndarray
        (T,) or (B, T) maximum-flow values from (0, j) to (L, q), within 5e-8 of the
        exact max flow (see the module docstring) and never above the out-capacity of (0, j)
        or the in-capacity of (L, q), which is 1.

    Raises
    ------
    ValueError
        If ``mixed`` is not such an array or ``q`` is not a position.
    TypeError
        If ``q`` is not an integer.
    """
    mixed = _checked(mixed)
    n_layers, n_positions = mixed.shape[-3], mixed.shape[-1]
    q = _checked_position(q, n_positions)
    if n_layers == 1:
        return mixed[..., 0, q, :].copy()
    if n_layers == 2:
        minima = np.minimum(mixed[..., 0, :, :], mixed[..., 1, q, :, None])
        sum_of_minima: np.ndarray = minima.sum(axis=-2)
        return sum_of_minima
    windows = mixed.reshape(-1, *mixed.shape[-3:])
    flows = np.array([_window_flow(window, q) for window in windows])
    return flows.reshape(*mixed.shape[:-3], n_positions)


def attention_flow_reference(mixed: np.ndarray, q: int = -1) -> np.ndarray:
    """Attention flow of one window, straight from the definition with networkx.

    Builds the full (L + 1) x T node graph and calls ``networkx.maximum_flow_value`` once
    per input position. Slow; for tests and benchmarks.

    Parameters
    ----------
    mixed
        (L, T, T) head-averaged, residual-mixed attention, as for :func:`attention_flow`.
    q
        Output position, Python-style.

    Returns
    -------
    np.ndarray
        (T,) maximum-flow values from (0, j) to (L, q).

    Raises
    ------
    ValueError
        If ``mixed`` is not one window of attention or ``q`` is not a position.
    TypeError
        If ``q`` is not an integer.
    """
    import networkx as nx  # a dev dependency: only tests and bench/ need the reference

    mixed = _checked(mixed)
    if mixed.ndim != 3:
        raise ValueError(f"the reference takes one window (L, T, T), got shape {mixed.shape}")
    n_layers, n_positions, _ = mixed.shape
    q = _checked_position(q, n_positions)
    graph = nx.DiGraph()
    graph.add_weighted_edges_from(
        ((layer, j), (layer + 1, i), float(mixed[layer, i, j]))
        for layer, i, j in np.ndindex(mixed.shape)
    )
    return np.array(
        [
            nx.maximum_flow_value(graph, (0, j), (n_layers, q), capacity="weight")
            for j in range(n_positions)
        ]
    )


def _checked(mixed: np.ndarray) -> np.ndarray:
    mixed = np.asarray(mixed, dtype=np.float64)
    if mixed.ndim not in (3, 4):
        raise ValueError(f"mixed must have shape (L, T, T) or (B, L, T, T), got {mixed.shape}")
    if mixed.shape[-1] != mixed.shape[-2]:
        raise ValueError(f"mixed must be square (T, T) in its last two axes, got {mixed.shape}")
    if 0 in mixed.shape[-3:]:
        raise ValueError(f"mixed needs at least one layer and one position, got {mixed.shape}")
    if not np.isfinite(mixed).all():
        raise ValueError("mixed has NaN or infinite entries")
    if (mixed < 0).any():
        raise ValueError(f"mixed has negative entries (smallest {mixed.min():.3g})")
    row_error = np.abs(mixed.sum(axis=-1) - 1)
    if (row_error > _ROW_TOLERANCE).any():
        raise ValueError(
            f"rows of mixed must sum to 1 (within {_ROW_TOLERANCE:g}); "
            f"one is off by {row_error.max():.3g}"
        )
    return mixed


def _checked_position(q: int, n_positions: int) -> int:
    q = operator.index(q)
    if not -n_positions <= q < n_positions:
        raise ValueError(f"q = {q} is not a position of a window of length {n_positions}")
    return q % n_positions


@dataclass(frozen=True)
class _Network:
    """Disjoint copies of the network (L >= 3) of one source, sharing one source and one sink.

    Node 0 is the source, node 1 the sink and node 2 + (c * (L - 1) + k - 1) * T + p is
    position p of layer k in copy c. Flows in different copies cannot interact, so one max
    flow gives each copy its own max flow while scipy is called once for all of them. The CSR
    pattern holds every edge in both directions: scipy then returns the flow on exactly this
    pattern. The source's row comes first, copy by copy; then the sink's, then each copy's
    nodes in turn. Index arrays are int32, as scipy wants them.
    """

    copies: int
    indptr: np.ndarray
    indices: np.ndarray
    pick: np.ndarray  # entry's capacity in [source edges (copies, T), mixed[1:-1], sink, 0]


@lru_cache(maxsize=4)  # one per window shape in use; each holds up to ~8 MB
def _network(n_layers: int, n_positions: int, copies: int) -> _Network:
    def layer(k: int) -> np.ndarray:
        return 2 + (k - 1) * n_positions + np.arange(n_positions)

    # The forward edges of copy 0: source edges, middle layers query-major as in
    # mixed[k - 1].ravel(), sink edges.
    tails = [np.full(n_positions, _SOURCE)]
    heads = [layer(1)]
    for k in range(2, n_layers):
        tails.append(np.tile(layer(k - 1), n_positions))
        heads.append(np.repeat(layer(k), n_positions))
    tails.append(layer(n_layers - 1))
    heads.append(np.full(n_positions, _SINK))
    nodes_per_copy = (n_layers - 1) * n_positions
    shift = nodes_per_copy * np.arange(copies)[:, None]
    tail, head = (
        np.where(ends > _SINK, ends + shift, ends).ravel()  # the source and sink are shared
        for ends in (np.concatenate(tails), np.concatenate(heads))
    )
    # Each copy has its own source edges; the middle and sink edges take the same capacities
    # in every copy, and the reversed edges none.
    own = np.arange(copies * n_positions).reshape(copies, n_positions)
    shared = copies * n_positions + np.arange(tail.size // copies - n_positions)
    pick = np.hstack([own, np.broadcast_to(shared, (copies, shared.size))]).ravel()
    pick = np.concatenate([pick, np.full(tail.size, shared[-1] + 1)])

    rows, cols = np.concatenate([tail, head]), np.concatenate([head, tail])
    order = np.lexsort((cols, rows))
    nodes = np.arange(2 + copies * nodes_per_copy + 1)
    return _Network(
        copies=copies,
        indptr=np.searchsorted(rows[order], nodes).astype(np.int32),
        indices=cols[order].astype(np.int32),
        pick=pick[order].astype(np.int32),
    )


def _window_flow(mixed: np.ndarray, q: int) -> np.ndarray:
    """Attention flow of one (L, T, T) window with L >= 3."""
    n_layers, n_positions, _ = mixed.shape
    entries_per_copy = 2 * (2 * n_positions + (n_layers - 2) * n_positions**2)
    copies = min(n_positions, max(1, _MAX_ENTRIES // entries_per_copy))
    network = _network(n_layers, n_positions, copies)
    sources = np.arange(n_positions)
    return np.concatenate(
        [
            _chunk_flow(network, mixed, q, sources[start : start + copies])
            for start in range(0, n_positions, copies)
        ]
    )


def _chunk_flow(network: _Network, mixed: np.ndarray, q: int, sources: np.ndarray) -> np.ndarray:
    """Max flow of each of ``sources``, one per copy, refined to within ``_GAP / 2``."""
    source_capacity = np.zeros((network.copies, mixed.shape[-1]))  # unused copies carry nothing
    source_capacity[: len(sources)] = mixed[0][:, sources].T
    capacity = np.concatenate([source_capacity.ravel(), mixed[1:-1].ravel(), mixed[-1, q], [0]])
    residual = capacity[network.pick]
    shape = (len(network.indptr) - 1,) * 2
    out_of_source = slice(0, network.indptr[1])  # the source's row: its edges, copy by copy
    lower = np.zeros(network.copies)
    upper = np.minimum(source_capacity.sum(axis=1), mixed[-1, q].sum())
    while (gap := (upper - lower).max()) > _GAP:
        # One unit for all copies: finer than some need, but it keeps the array ops scalar.
        unit = gap / _UNITS
        np.clip(residual, 0.0, gap, out=residual)
        units = (residual / unit).astype(np.int32)  # rounds down: residual >= 0
        graph = csr_array((units, network.indices, network.indptr), shape=shape)
        flow = maximum_flow(graph, _SOURCE, _SINK).flow.data  # net: -f on an edge's reverse
        residual -= flow * unit
        lower += flow[out_of_source].reshape(network.copies, -1).sum(axis=1) * unit

        # The integer residual graph keeps only its positive entries; it gets its own index
        # arrays because eliminate_zeros works in place.
        integer_residual = csr_array(
            (
                np.subtract(units, flow, dtype=np.float64),
                network.indices.copy(),
                network.indptr.copy(),
            ),
            shape=shape,
        )
        integer_residual.eliminate_zeros()
        reached = np.zeros(shape[0], dtype=bool)
        reached[breadth_first_order(integer_residual, _SOURCE, return_predecessors=False)] = True

        # Real residual capacity of the cut: per node, what is left on its entries to unreached
        # nodes, summed over the reached nodes of each copy; the shared source's row per copy.
        unreached = ~reached
        real_residual = csr_array((residual, network.indices, network.indptr), shape=shape)
        to_unreached = (real_residual @ unreached.astype(np.float64)) * reached
        from_source = residual[out_of_source] * unreached[network.indices[out_of_source]]
        cut_capacity = to_unreached[2:].reshape(network.copies, -1).sum(axis=1)
        cut_capacity += from_source.reshape(network.copies, -1).sum(axis=1)
        upper = np.minimum(upper, lower + cut_capacity)
    middle: np.ndarray = (lower + upper) / 2
    return middle[: len(sources)]
