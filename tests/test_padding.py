"""padding: right padding of lists and tensors, against a row-by-row fill."""

import torch

from transformers_align.padding import pad_right, pad_right_with_mask


def filled(rows, value, length):
    """Reference: a ``value``-filled table with each row copied in from the left."""
    table = [[value] * length for _ in rows]
    for out, row in zip(table, rows):
        out[: len(row)] = list(row)
    return table


def test_pad_right_lists_with_mask():
    ids, mask = pad_right_with_mask([[5, 6, 7], [8]])
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert ids.dtype == mask.dtype == torch.long


def test_pad_right_rounds_the_length_up_and_uses_the_value():
    rows = [[1, 2, 3, 4, 5], [6, 7], [9]]
    for multiple, length in ((None, 5), (1, 5), (4, 8), (8, 8), (5, 5)):
        assert pad_right(rows, -100, multiple).tolist() == filled(rows, -100, length)
    ids, mask = pad_right_with_mask(rows, pad_id=2, multiple_of=8)
    assert ids.tolist() == filled(rows, 2, 8) and mask.tolist() == filled([[1] * len(r) for r in rows], 0, 8)


def test_tensor_rows_keep_dtype_and_already_padded_streams_stack():
    """The aligned forward's case: two right-padded streams of different lengths become one batch."""
    side0 = torch.tensor([[3, 4, 0], [5, 0, 0]]), torch.tensor([[1, 1, 0], [1, 0, 0]], dtype=torch.bool)
    side1 = torch.tensor([[6, 7, 8, 9]]), torch.tensor([[1, 1, 1, 1]], dtype=torch.bool)
    ids = pad_right([row for stream in (side0[0], side1[0]) for row in stream])
    mask = pad_right([row for stream in (side0[1], side1[1]) for row in stream])
    assert ids.tolist() == [[3, 4, 0, 0], [5, 0, 0, 0], [6, 7, 8, 9]]
    assert mask.dtype == torch.bool
    assert mask.tolist() == [[True, True, False, False], [True, False, False, False], [True] * 4]
