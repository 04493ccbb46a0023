"""AdaMergeX merge rules on adapter tensors: LoRA by ΔW (exact or SVD-compressed) or per factor, IA3 by ratio.

Inputs come in the order (task, ref_target, ref_source) and every rule is computed in float32 or float64;
the caller casts the result to the output dtype.
"""

from typing import Dict, Sequence, Tuple

import torch

from transformers_align.errors import UserError


class IA3RatioError(UserError, ZeroDivisionError):
    """The ref_source IA3 vector has a zero entry: the ratio rule is undefined there."""


Factors = Dict[str, Tuple[torch.Tensor, torch.Tensor]]


def lora_delta(factors: Sequence[Factors], scalings: Sequence[Dict[str, float]], t: float) -> Tuple[Factors, int]:
    """ΔW_task + t(ΔW_ref_tgt − ΔW_ref_src), exactly, as one LoRA with scaling 1.

    With ΔW_i = s_i·B_i@A_i, stacking A = [s_1·A_1; t·s_2·A_2; −t·s_3·A_3] (rows) and B = [B_1, B_2, B_3]
    (columns) gives B@A = ΔW at rank r_1 + r_2 + r_3. Modules whose rank sum is below the largest are
    padded with zero rows and columns, so one rank (returned) fits every module.
    """
    weights = (1.0, t, -t)
    merged = {}
    for module in factors[0]:
        a = torch.cat([w * s[module] * f[module][0].float() for f, s, w in zip(factors, scalings, weights)], dim=0)
        b = torch.cat([f[module][1].float() for f in factors], dim=1)
        merged[module] = (a, b)
    rank = max(a.shape[0] for a, _ in merged.values())
    return {module: _pad_rank(a, b, rank) for module, (a, b) in merged.items()}, rank


def _pad_rank(a: torch.Tensor, b: torch.Tensor, rank: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Zero rows of A and zero columns of B up to ``rank``: B@A is unchanged."""
    missing = rank - a.shape[0]
    if missing == 0:
        return a, b
    return (
        torch.cat([a, a.new_zeros(missing, a.shape[1])], dim=0),
        torch.cat([b, b.new_zeros(b.shape[0], missing)], dim=1),
    )


def svd_compress(a: torch.Tensor, b: torch.Tensor, rank: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The best rank-``rank`` approximation of B@A (truncated SVD), as factors (A', B'), and all singular values.

    ΔW is never formed: with B = Q_b R_b and Aᵀ = Q_a R_a, B@A = Q_b (R_b R_aᵀ) Q_aᵀ, so the SVD of the small
    core gives the SVD of ΔW. The kept singular values are split evenly, √σ into each factor. Ranks above
    the rank of ΔW are padded with zeros. Computed in float64.
    """
    q_b, r_b = torch.linalg.qr(b.double())
    q_a, r_a = torch.linalg.qr(a.double().T)
    u, singular_values, vh = torch.linalg.svd(r_b @ r_a.T)
    keep = min(rank, singular_values.numel())
    root = singular_values[:keep].sqrt()
    b_new = (q_b @ u[:, :keep]) * root
    a_new = root[:, None] * (vh[:keep] @ q_a.T)
    a_new, b_new = _pad_rank(a_new, b_new, rank)
    return a_new, b_new, singular_values


def lora_per_factor(factors: Sequence[Factors], t: float) -> Factors:
    """X_task + t(X_ref_tgt − X_ref_src) for X = A and X = B separately: the rule the reference code applies.

    The product of the merged factors is not ΔW_task + t(ΔW_ref_tgt − ΔW_ref_src): it has the cross terms
    B_task·ΔA + ΔB·A_task and t²·ΔB·ΔA (ΔX = X_ref_tgt − X_ref_src).
    """
    task, target, source = factors
    return {
        module: tuple(
            x_task.float() + t * (x_tgt.float() - x_src.float())
            for x_task, x_tgt, x_src in zip(task[module], target[module], source[module])
        )
        for module in task
    }


def ia3_ratio(vectors: Sequence[Dict[str, torch.Tensor]], t: float) -> Dict[str, torch.Tensor]:
    """l_task ⊙ (1 + t(l_ref_tgt ⊘ l_ref_src − 1)), elementwise; at t = 1 this is l_task·l_tgt/l_src.

    A zero in l_ref_src makes the ratio undefined: that is an error naming the module and the count.
    """
    task, target, source = vectors
    merged = {}
    for module in task:
        zeros = int((source[module] == 0).sum())
        if zeros:
            raise IA3RatioError(
                f"module {module}: the ref_source IA3 vector has {zeros} zero entr{'y' if zeros == 1 else 'ies'}, "
                "so the ratio l_ref_tgt / l_ref_src is undefined there"
            )
        ratio = target[module].double() / source[module].double()
        merged[module] = task[module].double() * (1 + t * (ratio - 1))
    return merged
