"""Pooling, similarities and InfoNCE against plain re-computations with Python loops."""

import math

import pytest
import torch

from transformers_align.losses import drop_leading_special_tokens, info_nce, pool, similarity_matrix


def _masks():
    right = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    left = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 1]])
    return right, left


def _plain_pool(hidden, mask, kind):
    rows = []
    for h, m in zip(hidden, mask):
        real = h[m.bool()]
        rows.append({"mean": real.mean(0), "last": real[-1], "max": real.max(0).values}[kind])
    return torch.stack(rows)


@pytest.mark.parametrize("kind", ["mean", "last", "max"])
def test_pool_matches_plain_computation_for_both_padding_sides(kind):
    hidden = torch.randn(3, 5, 4)
    for mask in _masks():
        torch.testing.assert_close(pool(hidden, mask, kind), _plain_pool(hidden, mask, kind))


def test_last_pooling_is_padding_side_safe():
    # The same sentences, laid out right- and left-padded, pool to the same vectors.
    right, left = _masks()
    hidden_right = torch.randn(3, 5, 4)
    hidden_left = torch.zeros_like(hidden_right)
    for i in range(3):
        n = int(right[i].sum())
        hidden_left[i, 5 - n :] = hidden_right[i, :n]
    for kind in ["mean", "last", "max"]:
        torch.testing.assert_close(pool(hidden_right, right, kind), pool(hidden_left, left, kind))


def test_max_pooling_ignores_padding_even_when_padding_is_larger():
    hidden = -torch.ones(1, 3, 2)
    hidden[0, 2] = 100.0  # a pad position holding a large value
    assert pool(hidden, torch.tensor([[1, 1, 0]]), "max").tolist() == [[-1.0, -1.0]]


def test_pool_rejects_unknown_type_and_empty_sentence():
    with pytest.raises(ValueError, match="mean, last, max"):
        pool(torch.randn(1, 2, 3), torch.ones(1, 2), "cls")
    with pytest.raises(ValueError, match="no real tokens"):
        pool(torch.randn(2, 2, 3), torch.tensor([[1, 1], [0, 0]]), "mean")


def test_drop_leading_special_tokens_keeps_later_specials_and_padding_out():
    ids = torch.tensor([[9, 9, 5, 9, 0], [0, 9, 6, 7, 8], [9, 9, 0, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 0], [0, 1, 1, 1, 1], [1, 1, 0, 0, 0]])
    kept = drop_leading_special_tokens(ids, mask, [9])
    assert kept.int().tolist() == [[0, 0, 1, 1, 0], [0, 0, 1, 1, 1], [1, 1, 0, 0, 0]]  # all-special row keeps all


def _plain_similarity(a, b, kind):
    out = torch.empty(len(a), len(b))
    for i in range(len(a)):
        for j in range(len(b)):
            if kind == "cosine":
                out[i, j] = (a[i] @ b[j]) / (a[i].norm() * b[j].norm())
            elif kind == "dot":
                out[i, j] = a[i] @ b[j]
            else:
                out[i, j] = -math.sqrt(float(((a[i] - b[j]) ** 2).sum()))
    return out


def _plain_one_way(a, b, temperature, kind, hard=None, hard_weight=0.0):
    sims = _plain_similarity(a, b, kind) / temperature
    if hard is not None:
        extra = _plain_similarity(a, hard, kind) / temperature + hard_weight * torch.eye(len(a), len(hard))
        sims = torch.cat([sims, extra], 1)
    losses = [-(sims[i, i] - torch.logsumexp(sims[i], 0)) for i in range(len(a))]
    return torch.stack(losses).mean()


@pytest.mark.parametrize("kind", ["cosine", "dot", "l2"])
def test_similarity_matrix_matches_plain_computation(kind):
    a, b = torch.randn(3, 6), torch.randn(4, 6)
    torch.testing.assert_close(similarity_matrix(a, b, kind), _plain_similarity(a, b, kind), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["cosine", "dot", "l2"])
@pytest.mark.parametrize("direction", ["one_way", "symmetric"])
def test_info_nce_matches_plain_computation(kind, direction):
    a, b = torch.randn(5, 8), torch.randn(5, 8)
    expected = _plain_one_way(a, b, 0.1, kind)
    if direction == "symmetric":
        expected = 0.5 * (expected + _plain_one_way(b, a, 0.1, kind))
    got = info_nce(a, b, temperature=0.1, similarity=kind, direction=direction)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_one_way_uses_side0_as_anchor_like_mid_align():
    # mid-align: logits[i, j] = cos(p0[j], p1[i]) / t, loss = -LogSoftmax(dim=0)(logits).diag().mean()
    p0, p1 = torch.randn(4, 6), torch.randn(4, 6)
    logits = torch.nn.functional.cosine_similarity(p0.expand(4, 4, 6), p1.expand(4, 4, 6).transpose(0, 1), dim=-1) / 0.1
    mid_align = -torch.log_softmax(logits, dim=0).diag().mean()
    torch.testing.assert_close(info_nce(p0, p1, 0.1), mid_align)


def test_the_similarity_function_changes_the_loss():
    a, b = torch.randn(4, 8), torch.randn(4, 8)
    values = {k: info_nce(a, b, 0.5, similarity=k).item() for k in ["cosine", "dot", "l2"]}
    assert len({round(v, 6) for v in values.values()}) == 3


def test_hard_negatives_match_plain_computation():
    a, b, hard = torch.randn(3, 8), torch.randn(3, 8), torch.randn(3, 8)
    got = info_nce(a, b, 0.2, hard_negatives=hard, hard_negative_weight=0.5)
    torch.testing.assert_close(got, _plain_one_way(a, b, 0.2, "cosine", hard, 0.5), atol=1e-5, rtol=1e-5)


def test_stop_gradient_on_side1():
    a, b = torch.randn(4, 8, requires_grad=True), torch.randn(4, 8, requires_grad=True)
    info_nce(a, b, 0.1, stop_gradient_side1=True).backward()
    assert a.grad is not None and b.grad is None
    a.grad = None
    info_nce(a, b, 0.1).backward()
    assert a.grad is not None and b.grad is not None


@pytest.mark.parametrize("temperature", [0.0, -0.1, float("nan")])
def test_temperature_must_be_positive(temperature):
    with pytest.raises(ValueError, match="temperature must be > 0"):
        info_nce(torch.randn(2, 3), torch.randn(2, 3), temperature)


def test_single_pair_gives_zero_loss_and_a_gradient_path_not_nan(caplog):
    a, b = torch.randn(1, 8, requires_grad=True), torch.randn(1, 8, requires_grad=True)
    loss = info_nce(a, b, 0.1)
    assert loss.item() == 0.0 and not torch.isnan(loss)
    loss.backward()
    assert torch.all(a.grad == 0)


def test_l2_similarity_gradient_is_finite_for_identical_vectors():
    a = torch.randn(3, 4, requires_grad=True)
    info_nce(a, a.detach().clone(), 0.1, similarity="l2").backward()
    assert torch.isfinite(a.grad).all()


def test_drop_leading_positions_counts_real_tokens_whatever_the_padding_side():
    from transformers_align.losses import drop_leading_positions

    right = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]])
    left = right.flip(1)
    expected = torch.tensor([[0, 1, 1, 1, 0], [0, 1, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)  # 1 token: kept
    assert torch.equal(drop_leading_positions(right, 1), expected)
    expected_left = torch.tensor([[0, 0, 1, 1, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1]], dtype=torch.bool)
    assert torch.equal(drop_leading_positions(left, 1), expected_left)
    two = torch.tensor([[0, 0, 1, 1, 0], [0, 1, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)  # short: keep the last
    assert torch.equal(drop_leading_positions(right, 2), two)
    assert torch.equal(drop_leading_positions(right, 0), right.bool())


def test_mean_pooling_without_the_first_position_ignores_a_massive_first_token():
    from transformers_align.losses import pooled_cosines, pooling_mask

    torch.manual_seed(0)
    hidden = torch.randn(6, 5, 16)
    hidden[:, 0, 3] = 1e4  # an attention-sink-like activation on every first token
    mask = torch.ones(6, 5, dtype=torch.long)
    with_sink = pool(hidden, mask, "mean")
    true, random = pooled_cosines(with_sink, with_sink.roll(1, 0))
    assert random > 0.99  # every sentence points the same way
    without = pool(hidden, pooling_mask(torch.zeros(6, 5, dtype=torch.long), mask, skip_first=1), "mean")
    torch.testing.assert_close(without, hidden[:, 1:].mean(dim=1))
    assert pooled_cosines(without, without.roll(1, 0))[1] < 0.5
