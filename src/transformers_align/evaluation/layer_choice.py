"""A layer and a skip-first for the alignment loss, chosen from parallel pairs before training.

One pass of each side of the pairs through all decoder blocks gives, per layer l (output of block l, by early
exit, as the loss sees it): the sentences pooled with 0..``MAX_SKIP`` leading tokens left out, and the norm of
the first real tokens against the median token norm of their sentence (median over sentences). Real
checkpoints put a massive activation (an attention sink) on the first token in their middle layers; left in,
it makes every mean- or max-pooled sentence point the same way.

The rule (:func:`recommend`): at each layer, skip-first = how many leading tokens (up to ``MAX_SKIP``, in a
row from the first) have a norm ratio above ``SINK_RATIO``; the layer is the one whose mean top-1 retrieval
(both directions) with that skip-first is best, the lowest on ties. With ``last`` pooling the skip-first
is kept as given (the last token is pooled whatever the leading ones).
"""

import math
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from transformers_align.evaluation.encoding import batched_by_length, token_ids
from transformers_align.losses import pool, pooling_mask
from transformers_align.modeling import AlignmentSettings, layer_hidden_states, num_blocks, unwrap_causal_lm

# A leading token whose norm is this many times its sentence's median token norm is an attention sink
# (SmolLM2-135M at block 16: about 116 times; a tiny random model: about 1).
SINK_RATIO = 10.0
MAX_SKIP = 2


@dataclass
class LayerSweep:
    """Pooled vectors of both sides at every layer, per skip-first, and the leading tokens' norm ratios."""

    vectors: Dict[int, Tuple[torch.Tensor, torch.Tensor]]  # skip_first -> (side 0, side 1), each (layers, n, dim)
    norm_ratios: torch.Tensor  # (layers, MAX_SKIP): median over sentences of ||h_p|| / median_t ||h_t||
    seconds: float  # wall time of the pass of both sides through all blocks
    pairs: int


def leading_norm_ratios(hidden: Sequence[torch.Tensor], mask: torch.Tensor, count: int) -> torch.Tensor:
    """``(layers, batch, count)``: norm of the p-th token of ``mask`` over the median norm of the sentence's
    tokens in ``mask``, per layer (NaN where a sentence has no p-th token)."""
    norms = torch.stack([states.float().norm(dim=-1) for states in hidden])  # (layers, batch, time)
    median = norms.masked_fill(~mask, float("nan")).nanmedian(dim=-1).values
    rank = mask.long().cumsum(dim=-1)
    ratios = []
    for position in range(count):
        at = mask & (rank == position + 1)
        value = (norms * at).sum(dim=-1) / median
        ratios.append(value.masked_fill(~at.any(dim=-1), float("nan")))
    return torch.stack(ratios, dim=-1)


def sweep_layers(
    model,
    tokenizer,
    pairs: Sequence[Tuple[str, str]],
    settings: AlignmentSettings,
    skips: Sequence[int] = (),
    batch_size: int = 16,
    progress: bool = True,
) -> LayerSweep:
    """One pass of each side through all blocks: the vectors for skip-first 0..``MAX_SKIP`` and ``skips``,
    pooled as ``settings`` say otherwise, and the leading tokens' norm ratios."""
    causal_lm = unwrap_causal_lm(model)
    layers, device = num_blocks(causal_lm), next(model.parameters()).device
    skips = sorted({*range(MAX_SKIP + 1), *skips})
    bos = getattr(causal_lm.config, "bos_token_id", None)
    special = [bos] if settings.contrastive_pooling_skip_special and isinstance(bos, int) else ()
    ratios: List[torch.Tensor] = []

    def pooled_at_every_layer(ids, mask):
        ids, mask = ids.to(device), mask.to(device)
        hidden = layer_hidden_states(model, ids, mask, layers, all_layers=True)
        ratios.append(leading_norm_ratios(hidden, pooling_mask(ids, mask, 0, special), MAX_SKIP).cpu())
        masks = [pooling_mask(ids, mask, skip, special) for skip in skips]
        return torch.stack(
            [torch.stack([pool(states, m, settings.contrastive_pooling_type) for states in hidden]) for m in masks]
        ).cpu()

    start = time.perf_counter()
    sides = [
        batched_by_length(
            token_ids(tokenizer, [pair[side] for pair in pairs]),
            pooled_at_every_layer,
            batch_size,
            progress,
            f"side {side}, all {layers} blocks",
        )
        for side in (0, 1)
    ]
    seconds = time.perf_counter() - start
    return LayerSweep(
        vectors={skip: (sides[0][index], sides[1][index]) for index, skip in enumerate(skips)},
        norm_ratios=torch.cat(ratios, dim=1).nanmedian(dim=1).values,
        seconds=seconds,
        pairs=len(pairs),
    )


def mean_retrieval(side0: torch.Tensor, side1: torch.Tensor) -> float:
    """Mean of the top-1 retrieval accuracies both ways (nearest by cosine, ties to the lower index)."""
    x, y = (torch.nn.functional.normalize(side.double(), dim=-1) for side in (side0, side1))
    similarity, truth = x @ y.T, torch.arange(x.shape[0])
    return (
        0.5 * ((similarity.argmax(1) == truth).double().mean() + (similarity.argmax(0) == truth).double().mean()).item()
    )


def sink_count(ratios: Sequence[float]) -> int:
    """How many leading tokens in a row, from the first, have a norm ratio above ``SINK_RATIO``."""
    count = 0
    for ratio in ratios:
        if math.isnan(ratio) or ratio <= SINK_RATIO:
            break
        count += 1
    return count


def recommend(sweep: LayerSweep, settings: AlignmentSettings, fixed_skip_first: Optional[int] = None) -> dict:
    """The layer and skip-first of the module doc's rule, the per-layer evidence, and the reason in one line.

    ``settings`` (resolved) are the current ones: their pooling is used, their layer and skip-first are
    compared against. ``fixed_skip_first`` (one of the sweep's): choose the layer only, at that skip-first.
    ``seconds`` is the cost of the pass.
    """
    last_pooling = settings.contrastive_pooling_type == "last"
    fixed = settings.contrastive_pooling_skip_first if last_pooling else fixed_skip_first
    rows = []
    for index, ratios in enumerate(sweep.norm_ratios.tolist()):
        skip = fixed if fixed is not None else sink_count(ratios)
        side0, side1 = sweep.vectors[skip]
        rows.append(
            {
                "layer": index + 1,
                "leading_norm_ratios": ratios,
                "skip_first": skip,
                "retrieval": mean_retrieval(side0[index], side1[index]),
            }
        )
    best = max(rows, key=lambda row: (row["retrieval"], -row["layer"]))
    current_layer, current_skip = settings.additional_loss_layer, settings.contrastive_pooling_skip_first
    current = mean_retrieval(*(side[current_layer - 1] for side in sweep.vectors[current_skip]))
    ratio = best["leading_norm_ratios"][0]
    if fixed is not None:
        why_skip = "kept as given" + (" (last pooling)" if last_pooling else "")
    elif best["skip_first"]:
        why_skip = (
            f"the first {best['skip_first']} token(s) carry {ratio:.0f}x the median token norm at layer "
            f"{best['layer']} (attention sink)"
        )
    else:
        why_skip = f"no leading token above {SINK_RATIO:.0f}x the median token norm at layer {best['layer']}"
    reason = (
        f"layer {best['layer']}: best mean top-1 retrieval {best['retrieval']:.2f} on {sweep.pairs} pairs "
        f"(layer {current_layer} with skip_first {current_skip}: {current:.2f}); skip_first {best['skip_first']}: "
        f"{why_skip}; one pass through all blocks took {sweep.seconds:.1f} s"
    )
    return {
        "layer": best["layer"],
        "skip_first": best["skip_first"],
        "retrieval": best["retrieval"],
        "current_layer": current_layer,
        "current_skip_first": current_skip,
        "current_retrieval": current,
        "pairs": sweep.pairs,
        "seconds": sweep.seconds,
        "sink_ratio": SINK_RATIO,
        "reason": reason,
        "layers": rows,
    }
