import pytest
import torch
from torch import nn

from attnviz.model import (
    AttentionTransformer,
    LSTMBaseline,
    ModelConfig,
    PredictionHeads,
    Predictions,
    dropout,
    dropout_generator,
)

SMALL = ModelConfig(d_model=32, n_heads=4, n_layers=2, dropout=0.1)
OUTPUTS = ("ret", "direction_logit", "vol")


def seeded(seed: int = 0, config: ModelConfig = SMALL) -> AttentionTransformer:
    torch.manual_seed(seed)
    return AttentionTransformer(config).eval()


def assert_same(left: Predictions, right: Predictions) -> None:
    for name in OUTPUTS:
        torch.testing.assert_close(getattr(left, name), getattr(right, name))


def differs(left: Predictions, right: Predictions) -> bool:
    """Whether the predictions of some window moved by more than rounding."""
    return any(
        not torch.allclose(getattr(left, name), getattr(right, name), atol=1e-5) for name in OUTPUTS
    )


def test_attention_path_returns_every_layer_and_rows_sum_to_one() -> None:
    predictions, attention = seeded()(torch.randn(3, 20, 8), return_attention=True)
    assert list(attention) == ["layer_0", "layer_1"]
    for probs in attention.values():
        assert probs.shape == (3, 4, 20, 20)
        assert (probs >= 0).all()
        torch.testing.assert_close(probs.sum(-1), torch.ones(3, 4, 20))
    assert predictions.ret.shape == predictions.vol.shape == (3,)


def test_fast_and_attention_paths_agree_in_eval_mode() -> None:
    model = seeded()
    x = torch.randn(5, 30, 8)
    fast = model(x)
    slow, _ = model(x, return_attention=True)
    for name in OUTPUTS:
        torch.testing.assert_close(getattr(fast, name), getattr(slow, name), atol=1e-5, rtol=1e-5)


def test_outputs_have_their_ranges_and_keyword_sizes_work() -> None:
    model = AttentionTransformer(input_dim=8, d_model=64, n_heads=4, n_layers=3, dropout=0.1).eval()
    assert model.config == ModelConfig(input_dim=8, d_model=64, n_heads=4, n_layers=3, dropout=0.1)
    assert len(model.layers) == 3 and model.input.out_features == 64
    predictions = model(torch.randn(4, 60, 8) * 10)
    assert (predictions.vol >= 0).all()
    assert ((predictions.direction_prob > 0) & (predictions.direction_prob < 1)).all()
    torch.testing.assert_close(
        predictions.direction_prob, torch.sigmoid(predictions.direction_logit)
    )
    with pytest.raises(ValueError, match="not divisible"):
        AttentionTransformer(d_model=30, n_heads=4)


def test_prediction_uses_the_window_it_is_given_only() -> None:
    model = seeded()
    x = torch.randn(2, 20, 8)
    together = model(x)
    alone = model(x[:1])
    assert_same(alone, Predictions(*(getattr(together, name)[:1] for name in OUTPUTS)))
    other = x.clone()
    other[1] = torch.randn(20, 8) * 5  # the other window changes, this one's prediction does not
    assert_same(alone, Predictions(*(getattr(model(other), name)[:1] for name in OUTPUTS)))


def test_the_prediction_reads_every_bar_of_its_window_the_first_included() -> None:
    # Not causal inside a window: the last position attends to all bars before it.
    model = seeded()
    x = torch.randn(3, 20, 8)
    first_changed = x.clone()
    first_changed[:, 0] += 1.0
    assert differs(model(x), model(first_changed))


def test_the_order_of_the_bars_matters_through_the_position_encodings() -> None:
    model = seeded()
    x = torch.randn(3, 20, 8)
    reordered = torch.cat([x[:, :-1].flip(1), x[:, -1:]], 1)  # the same bars, the last one last
    assert differs(model(x), model(reordered))
    # Without its position encodings the model could not tell: attention is order-blind.
    model.positions.zero_()
    assert_same(model(x), model(reordered))


def test_a_seed_builds_the_same_model_and_another_seed_another() -> None:
    x = torch.randn(4, 20, 8)
    first, again, other = seeded(0), seeded(0), seeded(1)
    for name, value in first.state_dict().items():
        torch.testing.assert_close(again.state_dict()[name], value, rtol=0, atol=0)
    assert_same(first(x), again(x))
    assert differs(first(x), other(x))


def test_gradients_reach_every_parameter() -> None:
    model = seeded(config=ModelConfig(d_model=32, n_heads=4, n_layers=2, dropout=0.0)).train()
    predictions = model(torch.randn(8, 20, 8))
    (predictions.ret + predictions.direction_logit + predictions.vol).sum().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_dropout_acts_in_training_only() -> None:
    model = seeded(config=ModelConfig(d_model=32, n_heads=4, n_layers=2, dropout=0.5))
    x = torch.randn(4, 20, 8)
    assert_same(model(x), model(x))
    model.train()
    assert differs(model(x), model(x))


def test_lstm_baseline_has_the_same_heads_and_reads_the_whole_window() -> None:
    torch.manual_seed(0)
    lstm = LSTMBaseline(SMALL).eval()
    assert isinstance(lstm.heads, PredictionHeads)
    x = torch.randn(2, 20, 8)
    predictions = lstm(x)
    assert predictions.ret.shape == (2,) and (predictions.vol >= 0).all()
    first_changed = x.clone()
    first_changed[:, 0] += 1.0
    assert differs(predictions, lstm(first_changed))


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_dropout_drops_its_share_and_keeps_the_mean(p: float) -> None:
    x = torch.ones(400, 500)
    dropped = dropout(x, p, training=True)
    share = (dropped == 0).float().mean().item()
    assert abs(share - p) < 4 * (p * (1 - p) / x.numel()) ** 0.5 + 2**-17  # p in units of 2**-16
    assert dropped.mean().item() == pytest.approx(1.0, abs=0.01)
    assert set(dropped.unique().tolist()) == {0.0, dropped.max().item()}
    assert dropout(x, p, training=False) is x and dropout(x, 0.0, training=True) is x


def test_a_threads_generator_gives_repeatable_masks_and_leaves_the_global_one_alone() -> None:
    x = torch.ones(50, 60)

    def masks(seed: int) -> torch.Tensor:
        with dropout_generator(torch.Generator().manual_seed(seed)):
            return torch.stack([dropout(x, 0.3, training=True) for _ in range(3)])

    global_state = torch.get_rng_state()
    first = masks(0)
    assert torch.equal(torch.get_rng_state(), global_state)
    assert torch.equal(first, masks(0)) and not torch.equal(first, masks(1))
    assert not torch.equal(first[0], first[1])  # the generator moves on from mask to mask


def test_an_lstm_checkpoint_of_one_two_layer_module_loads_and_predicts_the_same() -> None:
    """Versions trained before the LSTM's layers were split keep loading, with their weights."""
    torch.manual_seed(0)
    two_layers = nn.LSTM(SMALL.input_dim, SMALL.d_model, num_layers=2, batch_first=True).eval()
    heads = PredictionHeads(SMALL.d_model).eval()
    saved = {f"lstm.{key}": value for key, value in two_layers.state_dict().items()}
    saved |= {f"heads.{key}": value for key, value in heads.state_dict().items()}
    lstm = LSTMBaseline(SMALL)
    lstm.load_state_dict(saved)
    x = torch.randn(3, 20, SMALL.input_dim)
    assert_same(lstm.eval()(x), heads(two_layers(x)[0][:, -1]))
