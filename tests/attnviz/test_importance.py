import numpy as np
import pytest
import torch

from attnviz.attention import mixed_attention
from attnviz.importance import explained, importance
from attnviz.model import AttentionTransformer, ModelConfig


@pytest.mark.parametrize(
    ("count", "newest", "every", "positions"),
    [
        (10, 3, 4, [0, 4, 7, 8, 9]),  # the sample, then the newest (8 is both)
        (40, 32, 16, [0, *range(8, 40)]),  # the defaults: 16 is among the newest
        (20, 0, 7, [0, 7, 14]),  # no newest: the sample alone
        (5, 32, 16, [0, 1, 2, 3, 4]),  # fewer windows than the newest: all of them
        (6, 0, 1, [0, 1, 2, 3, 4, 5]),  # every window
        (0, 32, 16, []),
    ],
)
def test_which_windows_are_explained(count: int, newest: int, every: int, positions) -> None:
    assert np.flatnonzero(explained(count, newest, every)).tolist() == positions


@pytest.mark.parametrize(("newest", "every"), [(3, 4), (32, 16), (0, 5)])
def test_appended_windows_leave_the_older_windows_sample_alone(newest: int, every: int) -> None:
    before, after = explained(50, newest, every), explained(55, newest, every)
    # The windows among the newest neither then nor now keep their place in the sample.
    np.testing.assert_array_equal(after[: 50 - newest], before[: 50 - newest])


def test_flow_and_integrated_gradients_score_only_the_windows_asked_for() -> None:
    torch.manual_seed(0)
    model = AttentionTransformer(ModelConfig(d_model=16, n_heads=2, n_layers=3)).eval()
    x = torch.randn(6, 12, model.config.input_dim)
    with torch.no_grad():
        _, attention = model(x, return_attention=True)
    mean = torch.stack([attention[f"layer_{i}"] for i in range(3)], 1).mean(2)
    mixed = mixed_attention(mean)
    explain = torch.tensor([True, False, False, True, False, True])

    def scores(explain: torch.Tensor, flow: bool, ig_steps: int):
        return importance(model, x, mean, mixed, explain, flow, ig_steps)

    some = scores(explain, True, 4)
    every = scores(torch.ones(6, dtype=torch.bool), True, 4)
    for method in ("attention_flow", "integrated_gradients"):
        assert some.has(method).tolist() == explain.tolist()
        assert some.positions[method][~explain].isnan().all()
        torch.testing.assert_close(
            some.positions[method][explain], every.positions[method][explain]
        )
    assert some.has("attention_rollout").all() and every.has("attention_flow").all()
    assert some.features["integrated_gradients"][~explain].isnan().all()
    assert some.agreement.isnan().tolist() == (~explain).tolist()
    torch.testing.assert_close(some.agreement[explain], every.agreement[explain])

    switched_off = scores(explain, False, 0)
    assert not switched_off.has("attention_flow").any()
    assert not switched_off.has("integrated_gradients").any()
    assert switched_off.agreement.isnan().all()
    torch.testing.assert_close(
        switched_off.positions["attention_rollout"], some.positions["attention_rollout"]
    )
