"""Pooling, similarity and InfoNCE: the pure tensor code that every alignment objective shares.

Everything here works on plain tensors: ``hidden`` is ``(batch, time, dim)``, masks are ``(batch, time)``
with 1 on real tokens and 0 on padding, whichever side the padding is on.
"""

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from transformers.utils import logging

logger = logging.get_logger(__name__)  # transformers' style: the fork view inlines this module into its files

POOLING_TYPES = ("mean", "last", "max")
SIMILARITY_FUNCTIONS = ("cosine", "dot", "l2")
CONTRASTIVE_DIRECTIONS = ("one_way", "symmetric")


def drop_leading_special_tokens(input_ids, attention_mask, special_token_ids: Sequence[int]):
    """Mask without the run of special tokens (BOS, chat markers) that opens each sentence.

    Padding may sit on either side. A sentence made only of special tokens keeps them all, so that
    it never pools over nothing.
    """
    mask = attention_mask.bool()
    if not special_token_ids:
        return mask
    special = torch.isin(input_ids, torch.as_tensor(list(special_token_ids), device=input_ids.device))
    # A position is kept once a real, non-special token has been seen at or before it.
    seen_content = torch.cumsum((mask & ~special).int(), dim=1) > 0
    keep = mask & seen_content
    only_special = ~keep.any(dim=1, keepdim=True)
    return torch.where(only_special, mask, keep)


def drop_leading_positions(attention_mask, count: int):
    """Mask without the first ``count`` real tokens of each sentence, by position whatever the token.

    Real checkpoints (Llama, Qwen, SmolLM2) put a "massive activation" on the first token in their middle
    layers, with or without a BOS, thousands of times the norm of the other tokens: left in, it makes
    every mean- or max-pooled sentence point the same way. Padding may sit on either side. A sentence of
    at most ``count`` real tokens keeps its last one, so that it never pools over nothing.
    """
    mask = attention_mask.bool()
    if count <= 0:
        return mask
    rank = mask.long().cumsum(dim=1)  # 1 on the first real token, counted from wherever the padding ends
    keep = mask & (rank > count)
    last = mask & (rank == mask.long().sum(dim=1, keepdim=True))
    return torch.where(keep.any(dim=1, keepdim=True), keep, last)


def pooling_mask(input_ids, attention_mask, skip_first: int = 0, skip_special_ids: Sequence[int] = ()):
    """The positions that pooling averages: real tokens, less the leading special tokens and first positions."""
    mask = (
        drop_leading_special_tokens(input_ids, attention_mask, skip_special_ids)
        if skip_special_ids
        else attention_mask.bool()
    )
    return drop_leading_positions(mask, skip_first)


def pool(hidden, attention_mask, pooling_type: str = "mean"):
    """Pool ``hidden`` over the real tokens of each sentence, in float32.

    ``mean`` averages the masked positions, ``last`` takes the last masked position (correct for left
    and right padding, unlike a ``mask.sum() - 1`` index), ``max`` takes the element-wise maximum of
    the masked positions (padding never wins).
    """
    if pooling_type not in POOLING_TYPES:
        raise ValueError(f"unknown pooling type {pooling_type!r}; choose one of {', '.join(POOLING_TYPES)}")
    mask = attention_mask.bool()
    if not bool(mask.any(dim=1).all()):
        raise ValueError(
            "a sentence has no real tokens (its attention mask is all zeros); drop empty sentences before pooling"
        )
    hidden = hidden.float()
    if pooling_type == "mean":
        weights = mask.unsqueeze(-1).float()
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1)
    if pooling_type == "last":
        positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
        last = torch.where(mask, positions, torch.full_like(positions, -1)).argmax(dim=1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    return hidden.masked_fill(~mask.unsqueeze(-1), float("-inf")).max(dim=1).values


def similarity_matrix(a, b, function: str = "cosine"):
    """``(len(a), len(b))`` similarities: cosine, dot product, or negative Euclidean distance."""
    if function == "cosine":
        return F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T
    if function == "dot":
        return a @ b.T
    if function == "l2":
        squared = (a * a).sum(-1, keepdim=True) + (b * b).sum(-1) - 2.0 * (a @ b.T)
        # The clamp keeps sqrt's gradient finite when two vectors coincide.
        return -squared.clamp_min(1e-12).sqrt()
    raise ValueError(f"unknown distance function {function!r}; choose one of {', '.join(SIMILARITY_FUNCTIONS)}")


def pooled_cosines(side0, side1):
    """``(mean cosine of true pairs, mean cosine of random pairs i != j)`` of two ``(n, dim)`` sides, n >= 2."""
    similarity = similarity_matrix(side0.double(), side1.double(), "cosine")
    n = similarity.shape[0]
    true = similarity.diagonal().sum()
    return (true / n).item(), ((similarity.sum() - true) / (n * (n - 1))).item()


def gather_with_local_gradient(local):
    """All-gather ``local`` from every rank; only this rank's slice keeps its gradient (as AFP/SimCSE)."""
    import torch.distributed as dist

    world = dist.get_world_size()
    gathered = [torch.zeros_like(local) for _ in range(world)]
    dist.all_gather(gathered, local.detach().contiguous())
    gathered[dist.get_rank()] = local
    return torch.cat(gathered, dim=0)


def _one_way(anchor, candidates, temperature, function, hard_negatives, hard_negative_weight):
    logits = similarity_matrix(anchor, candidates, function) / temperature
    if hard_negatives is not None:
        hard = similarity_matrix(anchor, hard_negatives, function) / temperature
        # SimCSE's offset: each anchor's own hard negative gets hard_negative_weight added to its logit.
        hard = hard + hard_negative_weight * torch.eye(*hard.shape, device=hard.device, dtype=hard.dtype)
        logits = torch.cat([logits, hard], dim=1)
    labels = torch.arange(anchor.shape[0], device=anchor.device)
    return F.cross_entropy(logits, labels)


def info_nce(
    side0,
    side1,
    temperature: float,
    similarity: str = "cosine",
    direction: str = "one_way",
    stop_gradient_side1: bool = False,
    hard_negatives: Optional[torch.Tensor] = None,
    hard_negative_weight: float = 0.0,
    gather_across_ranks: bool = False,
):
    """InfoNCE over in-batch negatives between pooled representations of parallel sentences.

    Row i of ``side0`` and row i of ``side1`` are translations. ``one_way`` takes side 0 as anchors and
    all of side 1 as candidates (mid-align's convention); ``symmetric`` averages both directions.
    ``hard_negatives`` (one per pair) are extra candidates for the side-0 anchors.

    With ``gather_across_ranks`` every rank gathers both sides from all ranks (its own slice keeps its
    gradient) and computes the loss of the whole global batch, so each rank reports the global loss.
    The gradient is scaled by the world size without changing the value, because data parallelism
    averages gradients over ranks while each rank only back-propagates through its own slice: the
    averaged gradient is then that of one process on the global batch.

    A batch with a single pair and no hard negatives has nothing to contrast against: the loss is a
    zero that keeps the graph connected, and this is logged once.
    """
    if not temperature > 0:
        raise ValueError(f"contrastive_loss_temperature must be > 0, got {temperature}")
    if direction not in CONTRASTIVE_DIRECTIONS:
        raise ValueError(
            f"unknown contrastive direction {direction!r}; choose one of {', '.join(CONTRASTIVE_DIRECTIONS)}"
        )
    if side0.shape != side1.shape:
        raise ValueError(f"the two sides of the pairs differ in shape: {tuple(side0.shape)} vs {tuple(side1.shape)}")
    if stop_gradient_side1:
        side1 = side1.detach()

    world_size = 1
    if gather_across_ranks:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            world_size = dist.get_world_size()
            side0 = gather_with_local_gradient(side0)
            side1 = gather_with_local_gradient(side1)
            if hard_negatives is not None:
                hard_negatives = gather_with_local_gradient(hard_negatives)

    if side0.shape[0] < 2 and hard_negatives is None:
        logger.warning_once(
            "a contrastive batch holds a single pair, so it has no negatives: its alignment loss counts as 0"
        )
        return (side0.sum() + side1.sum()) * 0.0

    loss = _one_way(side0, side1, temperature, similarity, hard_negatives, hard_negative_weight)
    if direction == "symmetric":
        loss = 0.5 * (loss + _one_way(side1, side0, temperature, similarity, None, 0.0))
    if world_size > 1:
        loss = loss + (world_size - 1) * (loss - loss.detach())
    return loss
