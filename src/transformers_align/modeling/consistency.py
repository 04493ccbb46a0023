"""Output consistency across translations: the KL divergence between the model's next-token distributions on a
task example and on its translation, over the target (answer) tokens, teacher-forced.

Side 0 is the example in the source language, side 1 the same prompt translated, followed by the same target
tokens; ``labels_*`` mark the target tokens (``-100`` elsewhere), which must be the same token ids, in the same
order, on both sides. Position ``t`` of a side is scored when the token after it is a target token, so the
``k``-th scored position of side 0 and of side 1 predict the same target token from the two prompts.

``one_way`` is ``KL(p_0 || p_1)`` with side 0 detached: the model's own source-language behaviour is the
teacher (its forward runs without gradients); ``symmetric`` is ``(KL(p_0 || p_1) + KL(p_1 || p_0)) / 2``
with gradients through both. The loss is the sum over the scored positions divided by their number (or by
``num_items``: the scored positions of the whole optimizer step per micro-batch, as the task loss's
``num_items_in_batch``). As in ``causal_lm_loss``, the LM head runs on the scored positions only, a chunk at
a time in float32, checkpointed when gradients are on, so no ``batch x time x vocabulary`` tensor exists.
"""

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from transformers_align.modeling.causal_lm_loss import IGNORE_INDEX, LOGITS_PER_CHUNK
from transformers_align.modeling.registry import decoder_backbone

CONSISTENCY_DIRECTIONS = ("one_way", "symmetric")


def scored_positions(labels):
    """``(batch, time)`` bool: the positions whose next token is a target token (labels are unshifted)."""
    scored = torch.zeros_like(labels, dtype=torch.bool)
    scored[:, :-1] = labels[:, 1:] != IGNORE_INDEX
    return scored


def _check_same_targets(labels_0, labels_1):
    targets_0 = [row[row != IGNORE_INDEX] for row in labels_0[:, 1:]]
    targets_1 = [row[row != IGNORE_INDEX] for row in labels_1[:, 1:]]
    for index, (a, b) in enumerate(zip(targets_0, targets_1)):
        if a.shape != b.shape or not torch.equal(a, b.to(a.device)):
            raise ValueError(
                f"consistency example {index}: the two sides' target tokens differ ({len(a)} vs {len(b)} tokens); "
                "a translated example must end in the same target tokens"
            )


def _summed_kl(head, states_0, states_1, symmetric: bool):
    with torch.set_grad_enabled(symmetric and torch.is_grad_enabled()):  # one-way: the teacher is detached
        log_p0 = F.log_softmax(head(states_0).float(), dim=-1)
    log_p1 = F.log_softmax(head(states_1).float(), dim=-1)
    # F.kl_div(input, target) is sum target * (log target - input): KL(target || input).
    forward = F.kl_div(log_p1, log_p0, log_target=True, reduction="sum")
    if not symmetric:
        return forward
    return 0.5 * (forward + F.kl_div(log_p0, log_p1, log_target=True, reduction="sum"))


def _final_states(causal_lm, input_ids, attention_mask):
    backbone = decoder_backbone(causal_lm)
    return backbone(input_ids=input_ids, attention_mask=attention_mask, use_cache=False, return_dict=True)[0]


def consistency_loss(causal_lm, side_0, side_1, direction: str = "one_way", num_items=None, chunk_size=None):
    """The consistency loss of one micro-batch; ``side_0`` / ``side_1``: ``(input_ids, attention_mask, labels)``.

    Returns a float32 scalar: the summed per-position KL over ``num_items`` (an int or 0-d tensor) when given,
    else over the number of scored positions; 0 with zero gradients when nothing is scored.
    """
    if direction not in CONSISTENCY_DIRECTIONS:
        raise ValueError(f"consistency_direction={direction!r}; choose one of {', '.join(CONSISTENCY_DIRECTIONS)}")
    symmetric = direction == "symmetric"
    (ids_0, mask_0, labels_0), (ids_1, mask_1, labels_1) = side_0, side_1
    _check_same_targets(labels_0, labels_1)
    if symmetric:
        states_0 = _final_states(causal_lm, ids_0, mask_0)
    else:
        with torch.no_grad():  # the teacher: the source-language side, detached
            states_0 = _final_states(causal_lm, ids_0, mask_0)
    states_1 = _final_states(causal_lm, ids_1, mask_1)
    rows_0 = states_0[scored_positions(labels_0.to(states_0.device))]
    rows_1 = states_1[scored_positions(labels_1.to(states_1.device))]
    head = causal_lm.get_output_embeddings()
    chunk_size = chunk_size or max(1, LOGITS_PER_CHUNK // causal_lm.config.vocab_size)
    recompute = torch.is_grad_enabled()
    total = None
    for start in range(0, max(len(rows_1), 1), chunk_size):  # one (empty) chunk keeps the graph when none is scored
        piece = (head, rows_0[start : start + chunk_size], rows_1[start : start + chunk_size], symmetric)
        kl = checkpoint(_summed_kl, *piece, use_reentrant=False) if recompute else _summed_kl(*piece)
        total = kl if total is None else total + kl
    if num_items is None:
        return total / max(len(rows_1), 1)
    if isinstance(num_items, torch.Tensor):
        num_items = num_items.to(total.device)
    return total / num_items
