"""Right padding of token sequences into batch tensors, for the collator, the scorers and the aligned forward alike."""

from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence

Row = Union[Sequence[int], torch.Tensor]  # token ids (or mask values) of one sequence


def pad_right(rows: Sequence[Row], value: int = 0, multiple_of: Optional[int] = None) -> torch.Tensor:
    """``(len(rows), length)``: the rows left-aligned, ``value`` after each.

    Lists become int64; tensors keep their dtype and device. ``length`` is the longest row, rounded up
    to ``multiple_of`` when given (tensor-core friendly shapes).
    """
    tensors = [row if isinstance(row, torch.Tensor) else torch.as_tensor(row, dtype=torch.long) for row in rows]
    padded = pad_sequence(tensors, batch_first=True, padding_value=value)
    if multiple_of:
        padded = F.pad(padded, (0, -padded.shape[1] % multiple_of), value=value)
    return padded


def pad_right_with_mask(
    rows: Sequence[Row], pad_id: int = 0, multiple_of: Optional[int] = None
) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids, attention_mask)`` of right-padded rows; the pad id is masked, so any id works."""
    ids = pad_right(rows, pad_id, multiple_of)
    mask = pad_right([torch.ones(len(row), dtype=torch.long, device=ids.device) for row in rows], 0, multiple_of)
    return ids, mask
