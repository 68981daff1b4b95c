import pytest
import torch

from attnviz.model import AttentionTransformer, LSTMBaseline, ModelConfig

SMALL = ModelConfig(d_model=32, n_heads=4, n_layers=2, dropout=0.1)


def test_attention_path_returns_every_layer_and_rows_sum_to_one() -> None:
    torch.manual_seed(0)
    model = AttentionTransformer(SMALL).eval()
    predictions, attention = model(torch.randn(3, 20, 8), return_attention=True)
    assert list(attention) == ["layer_0", "layer_1"]
    for probs in attention.values():
        assert probs.shape == (3, 4, 20, 20)
        assert (probs >= 0).all()
        torch.testing.assert_close(probs.sum(-1), torch.ones(3, 4, 20))
    assert predictions.ret.shape == predictions.vol.shape == (3,)


def test_fast_and_attention_paths_agree_in_eval_mode() -> None:
    torch.manual_seed(0)
    model = AttentionTransformer(SMALL).eval()
    x = torch.randn(5, 30, 8)
    fast = model(x)
    slow, _ = model(x, return_attention=True)
    for name in ("ret", "direction_logit", "vol"):
        torch.testing.assert_close(getattr(fast, name), getattr(slow, name), atol=1e-5, rtol=1e-5)


def test_outputs_have_their_ranges_and_keyword_sizes_work() -> None:
    model = AttentionTransformer(input_dim=8, d_model=64, n_heads=4, n_layers=3, dropout=0.1).eval()
    predictions = model(torch.randn(4, 60, 8) * 10)
    assert (predictions.vol >= 0).all()
    assert ((predictions.direction_prob > 0) & (predictions.direction_prob < 1)).all()
    with pytest.raises(ValueError, match="not divisible"):
        AttentionTransformer(d_model=30, n_heads=4)


def test_prediction_uses_the_window_it_is_given_only() -> None:
    model = AttentionTransformer(SMALL).eval()
    x = torch.randn(2, 20, 8)
    alone = model(x[:1]).ret
    together = model(x).ret[:1]
    torch.testing.assert_close(alone, together)


def test_lstm_baseline_has_the_same_heads() -> None:
    predictions = LSTMBaseline(SMALL)(torch.randn(2, 20, 8))
    assert predictions.ret.shape == (2,) and (predictions.vol >= 0).all()
