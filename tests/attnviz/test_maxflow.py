import numpy as np
import pytest

from attnviz.maxflow import attention_flow, attention_flow_reference

EXACT = 1e-6  # the contract: attention_flow agrees with the networkx reference this closely
CERTIFIED = 5e-8  # what attention_flow guarantees against the exact max flow


def mixed_attention(
    rng: np.random.Generator, n_layers: int, n_positions: int, sharpness: float, residual: bool
) -> np.ndarray:
    """Four heads of softmax attention over random logits, head-averaged, maybe residual-mixed."""
    logits = sharpness * rng.standard_normal((n_layers, 4, n_positions, n_positions))
    attention = np.exp(logits - logits.max(axis=-1, keepdims=True))
    attention /= attention.sum(axis=-1, keepdims=True)
    mixed = attention.mean(axis=1)
    if residual:
        mixed = 0.5 * mixed + 0.5 * np.eye(n_positions)
    return mixed / mixed.sum(axis=-1, keepdims=True)


KINDS = {  # sharpness of the logits, residual mixing
    "random": (2.0, True),
    "peaked": (30.0, False),  # near one-hot rows
    "uniform": (0.01, True),
}


def test_one_layer_flow_is_the_attention_row() -> None:
    mixed = np.array([[[0.2, 0.3, 0.5], [0.1, 0.8, 0.1], [0.6, 0.0, 0.4]]])
    np.testing.assert_array_equal(attention_flow(mixed), [0.6, 0.0, 0.4])
    np.testing.assert_array_equal(attention_flow(mixed, q=0), [0.2, 0.3, 0.5])


def test_two_layer_flow_is_the_sum_of_minima() -> None:
    first = [[0.6, 0.4, 0.0], [0.1, 0.2, 0.7], [0.0, 0.5, 0.5]]
    second = [[1 / 3, 1 / 3, 1 / 3], [1 / 3, 1 / 3, 1 / 3], [0.2, 0.3, 0.5]]
    # flow_j = sum_m min(first[m][j], second[2][m]):
    #   j = 0: min(.6, .2) + min(.1, .3) + min(0, .5)  = .2 + .1 + 0  = .3
    #   j = 1: min(.4, .2) + min(.2, .3) + min(.5, .5) = .2 + .2 + .5 = .9
    #   j = 2: min(0, .2)  + min(.7, .3) + min(.5, .5) = 0 + .3 + .5  = .8
    np.testing.assert_allclose(attention_flow(np.array([first, second])), [0.3, 0.9, 0.8])


def test_three_layer_flow_with_the_bottleneck_in_the_middle_layer() -> None:
    first = [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    middle = [[0.1, 0.1, 0.8], [0.2, 0.0, 0.8], [0.0, 0.0, 1.0]]
    last = [[1 / 3, 1 / 3, 1 / 3], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.3, 0.2]]
    # Source 0 reaches layer-1 nodes 0 and 1 (capacity 1 each) and the sink takes .5, .3, .2
    # from layer-2 nodes 0, 1, 2. In between, nodes 0 and 1 reach layer-2 node 0 through
    # .1 + .1, node 1 through .2 + 0 and node 2 not at all: the middle layer lets .4 through,
    # the cut {source, layer-1 nodes 0 and 1} | rest has capacity .4, so the flow is .4.
    # Source 1 has no edges (column 1 of the first layer is 0): flow 0. Source 2 feeds
    # layer-1 node 2 (capacity 1), which reaches the sink through min(.8, .5) + min(.8, .3)
    # + min(1, .2) = 1: flow 1.
    flows = attention_flow(np.array([first, middle, last]))
    np.testing.assert_allclose(flows, [0.4, 0.0, 1.0], atol=CERTIFIED)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n_positions", [5, 16])
@pytest.mark.parametrize("n_layers", [1, 2, 3, 4])
def test_agrees_with_networkx(n_layers: int, n_positions: int, kind: str) -> None:
    rng = np.random.default_rng([n_layers, n_positions, list(KINDS).index(kind)])
    mixed = mixed_attention(rng, n_layers, n_positions, *KINDS[kind])
    np.testing.assert_allclose(
        attention_flow(mixed), attention_flow_reference(mixed), rtol=0, atol=EXACT
    )


@pytest.mark.parametrize("q", [0, 6])
@pytest.mark.parametrize("n_layers", [1, 2, 3, 4])
def test_agrees_with_networkx_for_another_output_position(n_layers: int, q: int) -> None:
    mixed = mixed_attention(np.random.default_rng([n_layers, q]), n_layers, 16, 2.0, True)
    np.testing.assert_allclose(
        attention_flow(mixed, q=q), attention_flow_reference(mixed, q=q), rtol=0, atol=EXACT
    )


def test_agrees_with_networkx_on_a_full_window() -> None:
    mixed = mixed_attention(np.random.default_rng(60), 3, 60, 3.0, True)
    np.testing.assert_allclose(
        attention_flow(mixed), attention_flow_reference(mixed), rtol=0, atol=EXACT
    )


def test_is_exact_when_the_min_cut_has_thousands_of_edges() -> None:
    # Two blocks of h = 60 positions. Layer-1 positions of the first block attend only to
    # input 0; layer-2 positions of the second block give each first-block position a
    # weight eps, half a unit of 2**-30 off the grid; the output attends uniformly. From
    # input 0, layer-2 positions of the first block pass 1 / T each and those of the second
    # block h * eps (< 1 / T) each: the flow is h / T + h**2 * eps, and the min cut holds the
    # h**2 = 3600 eps-edges. Rounding every capacity once to units of 2**-30 is off by 1.7e-6.
    n_positions, h = 120, 60
    eps = (10737 + 0.5) * 2.0**-30
    mixed = np.zeros((3, n_positions, n_positions))
    mixed[0, :h, 0] = 1.0
    mixed[0, h:, h:] = 1 / h
    mixed[1, :h, :h] = 1 / h
    mixed[1, h:, :h] = eps
    mixed[1, h:, h:] = (1 - h * eps) / h
    mixed[2] = 1 / n_positions
    assert attention_flow(mixed)[0] == pytest.approx(h / n_positions + h**2 * eps, abs=CERTIFIED)


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_a_batch_gives_what_its_windows_give_one_at_a_time(n_layers: int) -> None:
    rng = np.random.default_rng(n_layers)
    batch = np.stack([mixed_attention(rng, n_layers, 8, 2.0, True) for _ in range(3)])
    flows = attention_flow(batch, q=2)
    assert flows.shape == (3, 8)
    for window, flow in zip(batch, flows, strict=True):
        np.testing.assert_allclose(flow, attention_flow(window, q=2), rtol=0, atol=1e-15)


@pytest.mark.parametrize("n_layers", [1, 2, 3, 4])
def test_flows_stay_within_the_capacity_out_of_each_source(n_layers: int) -> None:
    rng = np.random.default_rng(10 + n_layers)
    batch = np.stack([mixed_attention(rng, n_layers, 12, 3.0, False) for _ in range(2)])
    flows = attention_flow(batch)
    out_of_source = np.minimum(batch[:, 0].sum(axis=1), 1.0)  # column sums of the first layer
    assert (flows >= 0).all()
    assert (flows <= out_of_source + 1e-12).all()


def uniform(shape: tuple[int, ...]) -> np.ndarray:
    return np.full(shape, 1 / shape[-1])


def with_entry(value: float) -> np.ndarray:
    mixed = uniform((2, 3, 3))
    mixed[1, 2, 0] = value
    return mixed


@pytest.mark.parametrize(
    ("mixed", "message"),
    [
        (uniform((3, 3)), r"shape \(L, T, T\) or \(B, L, T, T\)"),
        (uniform((1, 2, 3, 3, 3)), r"shape \(L, T, T\) or \(B, L, T, T\)"),
        (uniform((2, 3, 4)), "square"),
        (uniform((0, 3, 3)), "at least one layer and one position"),
        (with_entry(np.nan), "NaN"),
        (with_entry(-0.2), "negative entries"),
        (with_entry(0.5), "sum to 1"),
    ],
)
def test_invalid_attention_is_refused(mixed: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        attention_flow(mixed)
    with pytest.raises(ValueError, match=message):
        attention_flow_reference(mixed)


@pytest.mark.parametrize("q", [3, -4])
def test_an_output_position_outside_the_window_is_refused(q: int) -> None:
    with pytest.raises(ValueError, match=f"q = {q} is not a position"):
        attention_flow(uniform((2, 3, 3)), q=q)


def test_the_reference_takes_one_window() -> None:
    with pytest.raises(ValueError, match="one window"):
        attention_flow_reference(uniform((2, 1, 3, 3)))
