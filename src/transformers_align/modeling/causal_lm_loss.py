"""The causal-LM task loss without a (batch, time, vocabulary) tensor: the LM head runs on labelled positions only.

Stock ``*ForCausalLM.forward`` (transformers 4.43.4) applies the LM head at every position and Llama and
Qwen2 cast the logits to float32 before the cross-entropy: a training batch holds ``batch x time x
vocabulary`` float32 logits and their gradient (34 GB at Llama-3-8B's 128,256 tokens, 32 sequences of
2,048). Here only the final hidden states whose next token has a label go through the head, a
chunk at a time (by default as many positions as keep one chunk's float32 logits within 256 MiB: 523
at a 128k vocabulary, the whole batch at a small one), and each chunk's cross-entropy is taken in
float32 as soon as its logits exist. With gradients on, every chunk is checkpointed: backward
recomputes one chunk's logits at a time, so at most one chunk of logits (and its gradient) is ever
alive. The head is called as a module, so tied embeddings, a bias or a LoRA adapter on it work unchanged.

The loss is the stock one: position ``t`` predicts ``labels[t + 1]``, ``-100`` is ignored, and the sum
of token cross-entropies is divided by the number of labelled tokens (or by ``num_items_in_batch``
when given: the tokens of the whole optimizer step under gradient accumulation). Two deliberate
differences: the cross-entropy is always float32 (stock XGLM and BLOOM take it in the logits' dtype,
so under bf16 this is the more precise one), and a batch without any labelled token gives a loss of
0 with zero gradients (stock: NaN, from 0 / 0).
"""

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

IGNORE_INDEX = -100  # the label that CrossEntropyLoss ignores, as transformers' collators pad labels
LOGITS_PER_CHUNK = 2**26  # float32 logits of one chunk: 256 MiB (positions x vocabulary)


def next_token_targets(labels, config):
    """``(batch, time)`` target of each position: the label of the next position, ``IGNORE_INDEX`` at the end.

    Stock XGLM (4.43.4) gives the last position of every row the target ``pad_token_id`` instead of
    ignoring it; that is kept, so an XGLM model gets XGLM's own loss (and AFP's, which trained it).
    """
    targets = torch.full_like(labels, IGNORE_INDEX)
    targets[:, :-1] = labels[:, 1:]
    if config.model_type == "xglm":
        targets[:, -1] = config.pad_token_id
    return targets


def _summed_cross_entropy(head, states, targets):
    logits = states if head is None else head(states)
    return F.cross_entropy(logits.float(), targets, reduction="sum")


def causal_lm_loss(states, labels, config, head=None, num_items_in_batch=None, chunk_size=None):
    """The task loss of one micro-batch from ``states``: final hidden states (``head`` given) or logits (``head=None``).

    ``states``: ``(batch, time, width)``; ``labels``: ``(batch, time)``, unshifted, ``-100`` where unlabelled.
    Returns a float32 scalar: the sum of the token cross-entropies over ``num_items_in_batch`` (an int
    or 0-d tensor) when given, else over the number of labelled tokens.
    """
    if isinstance(num_items_in_batch, int) and num_items_in_batch <= 0:
        raise ValueError(f"num_items_in_batch must be a positive number of labelled tokens, got {num_items_in_batch}")
    targets = next_token_targets(labels.to(states.device), config)
    labelled = targets != IGNORE_INDEX
    rows, targets = states[labelled], targets[labelled]
    recompute = head is not None and torch.is_grad_enabled()
    chunk_size = chunk_size or max(1, LOGITS_PER_CHUNK // config.vocab_size)
    total = None
    for start in range(
        0, max(len(targets), 1), chunk_size
    ):  # one (empty) chunk keeps the graph when nothing is labelled
        piece = (head, rows[start : start + chunk_size], targets[start : start + chunk_size])
        loss = (
            checkpoint(_summed_cross_entropy, *piece, use_reentrant=False)
            if recompute
            else _summed_cross_entropy(*piece)
        )
        total = loss if total is None else total + loss
    if num_items_in_batch is None:
        return total / labelled.sum().clamp(min=1)
    if isinstance(num_items_in_batch, torch.Tensor):
        num_items_in_batch = num_items_in_batch.to(total.device)
    return total / num_items_in_batch
