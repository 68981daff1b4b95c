import math

import numpy as np
import pytest
import torch

from attnviz import attention as att


def rows(*values: list[float]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def window(layers: list[torch.Tensor]) -> torch.Tensor:
    """(1, L, 1, T, T) from a list of single-head (T, T) matrices."""
    return torch.stack(layers)[None, :, None]


def test_entropy_confidence_distance_and_recent_mass_by_hand() -> None:
    one_hot, uniform, half = rows([0, 0, 0, 1]), rows([0.25] * 4), rows([0.5, 0, 0, 0.5])
    assert att.entropy(one_hot).item() == 0
    assert att.entropy(uniform).item() == pytest.approx(math.log(4))
    assert att.entropy(half).item() == pytest.approx(math.log(2))
    assert att.confidence(one_hot).item() == 1 and att.confidence(uniform).item() == pytest.approx(
        0
    )
    assert att.confidence(half).item() == pytest.approx(0.5)
    # Lags of positions 0..3 are 3, 2, 1, 0.
    assert att.expected_distance(half).item() == pytest.approx(1.5)
    assert att.expected_distance(one_hot).item() == 0
    assert att.recent_mass(half, 2).item() == pytest.approx(0.5)


def test_mean_row_entropy_is_the_rows_mean_entropy_zeros_included() -> None:
    torch.manual_seed(0)
    a = torch.softmax(5 * torch.randn(2, 3, 4, 6, 6), -1)
    a[0, 0, 0, 2] = torch.tensor([0.0, 0, 1, 0, 0, 0])  # 0 ln 0 counts as 0
    a[1, 2, 3, :, :3] = 0
    a[1, 2, 3, :, 3:] = 1 / 3
    expected = att.entropy(a).mean(-1)
    torch.testing.assert_close(att.mean_row_entropy(a), expected)
    assert att.mean_row_entropy(a)[1, 2, 3].item() == pytest.approx(math.log(3))
    scratch = torch.full_like(a, torch.nan)  # whatever it held is overwritten
    torch.testing.assert_close(att.mean_row_entropy(a, scratch), expected)


def test_head_confidence_reads_the_last_query_row() -> None:
    a = torch.full((1, 1, 2, 4, 4), 0.25, dtype=torch.float64)
    a[0, 0, 0, -1] = rows([0, 0, 0, 1])  # head 0: row q one-hot, its other rows uniform
    a[0, 0, 1, :-1] = rows([0, 0, 0, 1])  # head 1: the other way round
    assert att.head_confidence(a)[0, 0].tolist() == pytest.approx([1, 0])


def test_rollout_by_hand_and_rows_sum_to_one() -> None:
    a1 = rows([1, 0], [1, 0])  # both tokens read token 0
    a2 = rows([1, 0], [0, 1])  # identity
    mixed1 = rows([1, 0], [0.5, 0.5])  # 0.5 A + 0.5 I
    mixed2 = rows([1, 0], [0, 1])
    result = att.rollout(window([a1, a2]))[0]
    torch.testing.assert_close(result, mixed2 @ mixed1)
    # Token 1 keeps half of itself through the residual and gets half from token 0.
    torch.testing.assert_close(result[-1], torch.tensor([0.5, 0.5], dtype=torch.float64))
    random = torch.softmax(torch.randn(3, 2, 4, 6, 6, dtype=torch.float64), -1)
    torch.testing.assert_close(att.rollout(random).sum(-1), torch.ones(3, 6, dtype=torch.float64))


def test_jensen_shannon_bounds_and_symmetry() -> None:
    p, q = rows([1, 0]), rows([0, 1])
    assert att.jensen_shannon(p, q).item() == pytest.approx(math.log(2))
    assert att.jensen_shannon(p, p).item() == pytest.approx(0)
    x, y = torch.softmax(torch.randn(2, 5, dtype=torch.float64), -1)
    assert att.jensen_shannon(x, y).item() == pytest.approx(att.jensen_shannon(y, x).item())
    # Renormalised first: scale does not matter.
    assert att.jensen_shannon(3 * x, y).item() == pytest.approx(att.jensen_shannon(x, y).item())


def test_consecutive_stability_re_indexes_by_bar_time() -> None:
    # The same bars attended in absolute time: window n's position j is window n-1's j + 1.
    earlier = rows([0.1, 0.6, 0.2, 0.1])[0]
    later = torch.tensor([0.6, 0.2, 0.1, 0.1], dtype=torch.float64)
    same = att.consecutive_stability(torch.stack([earlier, later]), k=2)
    assert math.isnan(same["jsd"][0]) and same["jsd"][1].item() == pytest.approx(0, abs=1e-12)
    assert same["topk_jaccard"][1].item() == 1.0
    moved = att.consecutive_stability(later[None], previous=later, k=1)  # not re-indexed: moved
    assert moved["jsd"][0].item() > 0.01 and moved["topk_jaccard"][0].item() == 0.0


def test_spearman_and_topk_jaccard_by_hand() -> None:
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    assert att.spearman(x, x).item() == pytest.approx(1)
    assert att.spearman(x, -x).item() == pytest.approx(-1)
    assert att.topk_jaccard(x, torch.tensor([[4.0, 3.0, 2.0, 1.0]]), 2).item() == 0
    assert att.topk_jaccard(x, torch.tensor([[0.0, 5.0, 1.0, 9.0]]), 2).item() == pytest.approx(
        1 / 3
    )


def test_specialisation_is_zero_for_identical_heads_and_ln2_for_disjoint() -> None:
    same = torch.softmax(torch.randn(1, 1, 1, 4, 4), -1).expand(1, 1, 3, 4, 4)
    assert att.specialisation(same).item() == pytest.approx(0, abs=1e-6)
    disjoint = torch.zeros(1, 1, 2, 2, 2)
    disjoint[..., 0, 0, :, 0] = 1
    disjoint[..., 0, 1, :, 1] = 1
    assert att.specialisation(disjoint).item() == pytest.approx(math.log(2))


@pytest.mark.parametrize(
    ("name", "matrix"),
    [
        ("uniform", lambda t: torch.full((t, t), 1 / t)),
        ("local", lambda t: torch.eye(t)),
        (
            "recent",
            lambda t: torch.cat(
                [torch.full((t, t - 3), 0.1 / (t - 3)), torch.full((t, 3), 0.3)], 1
            ),
        ),
        ("periodic", lambda t: periodic(t)),
        ("event", lambda t: torch.nn.functional.one_hot(torch.full((t,), 7), t).float()),
        ("mixed", lambda t: torch.nn.functional.one_hot(torch.full((t,), 3), t).float()),
    ],
)
def test_pattern_rules(name: str, matrix) -> None:
    t = 20
    a = matrix(t)[None, None, None]
    events = torch.zeros(1, t, dtype=torch.bool)
    events[0, 7] = True
    assert att.PATTERNS[att.pattern_class(a, events, k=3, periods=(5,)).item()] == name


def periodic(t: int) -> torch.Tensor:
    """Row q puts its mass on lags 5, 10, 15 (positions 14, 9, 4)."""
    row = torch.full((t,), 0.1 / (t - 3))
    row[[4, 9, 14]] = 0.3
    return (row / row.sum()).expand(t, t)


def test_calibrate_sustained_and_cusum() -> None:
    reference = torch.arange(100, dtype=torch.float64)
    assert att.calibrate(
        torch.tensor([-1.0, 49.5, 200.0], dtype=torch.float64), reference
    ).tolist() == [0, 0.5, 1]
    condition = torch.tensor([1, 1, 0, 1, 1, 1, 1], dtype=torch.bool)
    assert att.sustained(condition, 3).tolist() == [False, False, False, False, False, True, True]
    # Calmer than the reference (sd 0.5 vs 1), so a false alarm is practically impossible.
    noise = torch.from_numpy(np.random.default_rng(0).normal(0, 0.5, 300))
    assert not att.cusum_changes(noise, 0.0, 1.0).any()
    # Two lasting shifts, up by 2 sd at 100 and back down at 200: one alarm each, soon after.
    shifted = noise + torch.cat([torch.zeros(100), torch.full((100,), 2.0), torch.zeros(100)])
    alarms = att.cusum_changes(shifted, 0.0, 1.0).nonzero().flatten().tolist()
    assert len(alarms) == 2 and 100 < alarms[0] <= 110 and 200 < alarms[1] <= 210
