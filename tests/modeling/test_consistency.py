"""The consistency loss (modeling/consistency.py, through the aligned forward) equals a plain recomputation from
the stock model's full logits with F.kl_div, in value and in gradients, on the four architectures, one-way and
symmetric, chunked, and under gradient accumulation (token mean of the whole optimizer step)."""

import pytest
import torch
import torch.nn.functional as F

from tests.support.models import ARCHITECTURES, make_model
from transformers_align.modeling import patch_model
from transformers_align.modeling.consistency import consistency_loss
from transformers_align.objectives.consistency import ConsistencyObjective

PROMPTS_0, PROMPTS_1, TARGETS = (4, 6, 3), (5, 3, 7), (3, 2, 4)  # lengths of each example's parts
PAD = 0
FIELDS = ConsistencyObjective.fields


def _rows(vocab, seed=0):
    """Per example: (side-0 ids, side-1 ids, target length): two prompts, then the same target tokens."""
    generator = torch.Generator().manual_seed(seed)
    draw = lambda n: torch.randint(3, vocab, (n,), generator=generator)  # noqa: E731
    rows = []
    for p0, p1, t in zip(PROMPTS_0, PROMPTS_1, TARGETS):
        target = draw(t)
        rows.append((torch.cat([draw(p0), target]), torch.cat([draw(p1), target]), t))
    return rows


def _side(rows, side):
    """Right-padded ids, mask and labels (the target tokens; -100 elsewhere) of one side of ``rows``."""
    length = max(len(r[side]) for r in rows)
    ids = torch.full((len(rows), length), PAD)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    for i, row in enumerate(rows):
        n, t = len(row[side]), row[2]
        ids[i, :n], mask[i, :n] = row[side], 1
        labels[i, n - t : n] = row[side][n - t :]
    return ids, mask, labels


def _batch(rows):
    return dict(zip(FIELDS, _side(rows, 0) + _side(rows, 1)))


def _reference(model, rows, direction, divisor=None):
    """Full logits of both sides from the stock forward, the scored positions picked by hand, F.kl_div."""
    log_probs = []
    for side in (0, 1):
        picked = []
        for row in rows:
            logits = model(input_ids=row[side][None], attention_mask=torch.ones(1, len(row[side]))).logits[0]
            n, t = len(row[side]), row[2]
            picked.append(logits[n - t - 1 : n - 1])  # the positions that predict the target tokens
        log_probs.append(F.log_softmax(torch.cat(picked).float(), dim=-1))
    lp0, lp1 = log_probs
    count = divisor if divisor is not None else len(lp0)
    if direction == "one_way":
        return F.kl_div(lp1, lp0.detach(), log_target=True, reduction="sum") / count
    both = F.kl_div(lp1, lp0, log_target=True, reduction="sum") + F.kl_div(lp0, lp1, log_target=True, reduction="sum")
    return 0.5 * both / count


def _gradients(model, loss):
    model.zero_grad()
    loss.backward()
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def _assert_same_gradients(actual, expected):
    assert set(actual) == set(expected)
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("direction", ["one_way", "symmetric"])
@pytest.mark.parametrize("model_type", ARCHITECTURES)
def test_the_loss_and_its_gradients_equal_a_plain_kl_recomputation(model_type, direction):
    model = patch_model(make_model(model_type), consistency_direction=direction)
    rows = _rows(model.config.vocab_size)
    expected = _reference(model, rows, direction)
    expected_gradients = _gradients(model, expected)
    output = model(**_batch(rows))
    assert output.loss is not None and set(output.objective_losses) == {"consistency"}
    torch.testing.assert_close(output.objective_losses["consistency"], expected, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(output.loss, model.config.consistency_loss_weight * expected, rtol=1e-5, atol=1e-7)
    _assert_same_gradients(_gradients(model, output.loss), expected_gradients)
    chunked = consistency_loss(model, _side(rows, 0), _side(rows, 1), direction, chunk_size=2)  # 9 positions: 5 chunks
    torch.testing.assert_close(chunked, expected, rtol=1e-5, atol=1e-7)
    _assert_same_gradients(_gradients(model, chunked), expected_gradients)


@pytest.mark.parametrize("model_type", ["llama", "bloom"])
def test_gradient_accumulation_gives_the_token_mean_of_the_optimizer_step(model_type):
    """Two micro-batches, each divided by the window's scored tokens per micro-batch (what the trainer passes
    as consistency_num_items), averaged as the Trainer averages accumulated losses: the full batch's mean."""
    model = patch_model(make_model(model_type), consistency_direction="symmetric")
    rows = _rows(model.config.vocab_size, seed=1)
    expected_gradients = _gradients(model, _reference(model, rows, "symmetric"))
    per_micro_batch = sum(TARGETS) / 2
    micro = [model(**_batch(part), consistency_num_items=per_micro_batch).loss for part in (rows[:2], rows[2:])]
    _assert_same_gradients(_gradients(model, (micro[0] + micro[1]) / 2), expected_gradients)


def test_one_way_leaves_the_source_side_without_gradient():
    model = patch_model(make_model("llama"))
    rows = _rows(model.config.vocab_size)
    batch = _batch(rows)
    embeddings = model.get_input_embeddings()
    seen = []
    handle = embeddings.register_forward_hook(lambda module, args, out: seen.append(out.requires_grad))
    try:
        model(**batch).loss.backward()
    finally:
        handle.remove()
    assert seen == [False, True]  # the source side's forward ran without gradients, the translation's with


def test_different_targets_on_the_two_sides_are_refused():
    model = patch_model(make_model("llama"))
    rows = _rows(model.config.vocab_size)
    rows[1] = (rows[1][0], torch.cat([rows[1][1][:-1], rows[1][1][-1:] + 1]), rows[1][2])
    with pytest.raises(ValueError, match="consistency example 1: the two sides' target tokens differ"):
        model(**_batch(rows))


def test_a_head_that_is_not_a_plain_linear_map_is_refused():
    """Gemma-2's soft-capped logits (tanh(logits / cap) * cap) would make the chunked losses differ from stock."""
    model = make_model("llama")
    model.config.final_logit_softcapping = 30.0
    with pytest.raises(ValueError, match="final_logit_softcapping=30.0: its logits are not lm_head"):
        patch_model(model)
