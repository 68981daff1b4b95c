from pathlib import Path

import numpy as np
import pytest

from attnviz.plots import render_flow_diagram
from attnviz.plots.flow import edges_to_draw


def test_the_diagram_leaves_self_attention_out_however_strong() -> None:
    # Mostly self-attention, as with the residual mixed in; then key 0, and key 2 for query 3.
    weights = 0.7 * np.eye(4) + 0.1
    weights[:, 0] += 0.05
    weights[3, 2] += 0.02
    queries, keys = np.divmod(edges_to_draw(weights, top_k=3, last_query_k=0), 4)
    assert (queries != keys).all()
    assert sorted(zip(queries.tolist(), keys.tolist(), strict=True)) == [(1, 0), (2, 0), (3, 0)]


def test_the_last_querys_strongest_edges_are_always_drawn() -> None:
    weights = np.full((4, 4), 0.25)
    weights[0, 1] = weights[1, 2] = 0.4  # the strongest edges, not into the last query
    weights[3, 3] = 0.5  # the last query's self-attention: not drawn
    weights[3, 1] = 0.3
    edges = edges_to_draw(weights, top_k=2, last_query_k=1)
    assert edges.tolist() == [0 * 4 + 1, 1 * 4 + 2, 3 * 4 + 1]


def test_every_layer_gets_its_columns(tmp_path: Path) -> None:
    weights = np.full((3, 6, 6), 1 / 6)
    labels = list("abcdef")
    one = render_flow_diagram(weights[:1], labels, tmp_path / "one.png", "one layer")
    three = render_flow_diagram(weights, labels, tmp_path / "three.png", "three layers")
    assert three[0] > one[0] and three[1] == one[1]


def test_a_single_matrix_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"weights must have shape \(layers, T, T\)"):
        render_flow_diagram(np.eye(4), list("abcd"), tmp_path / "x.png", "bad")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(("top_k", "last_query_k"), [(0, 5), (10, -1)])
def test_edge_counts_must_make_sense(top_k: int, last_query_k: int, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="need top_k >= 1 and last_query_k >= 0"):
        render_flow_diagram(
            np.full((1, 4, 4), 0.25),
            list("abcd"),
            tmp_path / "x.png",
            "bad",
            top_k,
            last_query_k=last_query_k,
        )
