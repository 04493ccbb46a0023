"""Batched, memory-safe log-likelihood of continuations: sum of log p(token | prefix) over the continuation.

Only the hidden states that predict continuation tokens go through the LM head, in chunks of rows, and
each chunk's log-probabilities are ``logit[target] - logsumexp(logits)`` in float32: no ``(batch, time,
vocab)`` tensor is ever built (AFP's scorer built a float32 log-softmax of that size, 256k-wide for XGLM).
"""

from typing import List, Optional, Sequence, Tuple

import torch
from tqdm.auto import tqdm

from transformers_align.modeling.registry import decoder_backbone, unwrap_causal_lm
from transformers_align.padding import pad_right_with_mask

Request = Tuple[List[int], List[int]]  # (context token ids, continuation token ids)


def _common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    length = 0
    for x, y in zip(a, b):
        if x != y:
            break
        length += 1
    return length


def encode_pair(tokenizer, context: str, continuation: str) -> Request:
    """Context and continuation ids, split inside the tokenisation of the whole text ``context + continuation``.

    The whole text is encoded once with the tokenizer's special tokens (BOS where it adds one), so the
    tokens are those the model would see for the full string. The context's trailing whitespace is scored
    with the continuation, as lm-evaluation-harness does (``_encode_pair`` in lm-eval 0.4.13's
    ``api/model.py``): the context part is the prefix the whole encoding shares with the encoding of the
    context without its trailing whitespace (a token that straddles the boundary belongs to the
    continuation). This leaves the ranking of candidates after one context unchanged, and makes
    length-normalised scores equal to lm-eval's. With no context token at all, the BOS (else EOS) id is put
    in front to condition on. The tokenizer is only called, never modified.
    """
    if not continuation:
        raise ValueError("the continuation to score is empty")
    whole = tokenizer(context + continuation)["input_ids"]
    split = min(_common_prefix_length(whole, tokenizer(context.rstrip())["input_ids"]), len(whole) - 1)
    if split == 0:
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        if start is None:
            raise ValueError(
                "the context is empty and the tokenizer has neither a BOS nor an EOS token to condition on"
            )
        return [start], whole
    return whole[:split], whole[split:]


def backbone_and_head(model):
    """The decoder without its LM head, and the head, of a supported causal LM (PEFT LoRA/IA3 adapters included).

    The registry lists only architectures whose logits are ``head(last_hidden_state)``; prompt-learning
    adapters (virtual tokens) are refused.
    """
    peft_config = getattr(model, "active_peft_config", None)
    if peft_config is not None and getattr(peft_config, "is_prompt_learning", False):
        raise ValueError("prompt-learning adapters (virtual tokens) are not supported by the chunked scorer")
    causal_lm = unwrap_causal_lm(model)
    return decoder_backbone(causal_lm), causal_lm.get_output_embeddings()


def _window(request: Request, max_length: Optional[int]) -> Tuple[List[int], int]:
    """Model input (all tokens but the last) cut from the left to ``max_length``, and the continuation length."""
    context, continuation = request
    tokens = list(context) + list(continuation)
    if max_length is not None and len(tokens) - 1 > max_length:
        if len(continuation) > max_length:
            raise ValueError(
                f"a continuation of {len(continuation)} tokens does not fit the model's {max_length}-token window"
            )
        tokens = tokens[-(max_length + 1) :]
    return tokens[:-1], len(continuation)


@torch.no_grad()
def continuation_logprobs(
    model,
    requests: Sequence[Request],
    batch_size: int = 8,
    chunk_size: int = 512,
    max_length: Optional[int] = None,
    progress: bool = True,
    desc: str = "log-likelihood",
) -> List[float]:
    """For each ``(context ids, continuation ids)``: sum over the continuation of log p(token | everything before).

    Requests are batched longest first, right-padded, and run through the backbone once; the LM head
    sees only the positions that predict continuation tokens, ``chunk_size`` rows at a time. Inputs
    longer than ``max_length`` (default: the model's ``max_position_embeddings``) lose their oldest
    context tokens. Call it on a model in eval mode; the result is in request order.
    """
    backbone, head = backbone_and_head(model)
    if max_length is None:
        max_length = getattr(unwrap_causal_lm(model).config, "max_position_embeddings", None)
    device = next(model.parameters()).device
    order = sorted(range(len(requests)), key=lambda i: -(len(requests[i][0]) + len(requests[i][1])))
    scores = [0.0] * len(requests)
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    for batch in tqdm(batches, desc=desc, disable=not progress):
        windows = [_window(requests[i], max_length) for i in batch]
        ids, mask = pad_right_with_mask([inputs for inputs, _ in windows])
        hidden = backbone(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False, return_dict=True)[
            0
        ]
        rows, positions, targets, owners = [], [], [], []
        for row, (request_index, (inputs, count)) in enumerate(zip(batch, windows)):
            rows += [row] * count
            positions += range(len(inputs) - count, len(inputs))
            targets += requests[request_index][1]
            owners += [request_index] * count
        selected = hidden[torch.tensor(rows, device=device), torch.tensor(positions, device=device)]
        targets = torch.tensor(targets, device=device)
        token_logprobs = torch.empty(len(targets), dtype=torch.float32, device=device)
        for start in range(0, len(targets), chunk_size):
            logits = head(selected[start : start + chunk_size]).float()
            picked = logits.gather(1, targets[start : start + chunk_size, None]).squeeze(1)
            token_logprobs[start : start + chunk_size] = picked - logits.logsumexp(dim=-1)
        for owner, value in zip(owners, token_logprobs.tolist()):
            scores[owner] += value
    return scores


@torch.no_grad()
def candidate_logprobs(
    model, prompts: Sequence[Sequence[int]], candidates: Sequence[Sequence[int]], batch_size: int = 32
) -> torch.Tensor:
    """``(len(prompts), len(candidates))`` sums of log p(candidate tokens | prompt): a fixed answer set, scored cheaply.

    The same numbers as :func:`continuation_logprobs` on every (prompt, candidate) request, with fewer
    forwards: all one-token candidates are read from a single next-token distribution, so a prompt
    costs one forward per multi-token candidate (one forward if there is none). Prompt and candidate
    ids are concatenated as given (tokenize them as the model was trained). Call on a model in eval mode.
    """
    if not candidates or any(len(candidate) == 0 for candidate in candidates):
        raise ValueError("every candidate needs at least one token")
    backbone, head = backbone_and_head(model)
    device = next(model.parameters()).device
    longer = [index for index, candidate in enumerate(candidates) if len(candidate) > 1]
    single = [(index, candidate[0]) for index, candidate in enumerate(candidates) if len(candidate) == 1]
    carriers = longer or [None]  # the continuations run after each prompt; None: the prompt alone
    jobs = [(row, carrier) for row in range(len(prompts)) for carrier in carriers]
    scores = torch.zeros(len(prompts), len(candidates), dtype=torch.float32)
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start : start + batch_size]
        inputs = [
            list(prompts[row]) + (list(candidates[carrier][:-1]) if carrier is not None else [])
            for row, carrier in chunk
        ]
        ids, mask = pad_right_with_mask(inputs)
        hidden = backbone(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False, return_dict=True)[
            0
        ]
        for position, (row, carrier) in enumerate(chunk):
            first = len(prompts[row]) - 1  # the position that predicts the first answer token
            length = len(candidates[carrier]) if carrier is not None else 1
            logprobs = head(hidden[position, first : first + length]).float().log_softmax(dim=-1).cpu()
            if carrier == carriers[0]:
                for index, token in single:
                    scores[row, index] = logprobs[0, token]
            if carrier is not None:
                scores[row, carrier] = logprobs[torch.arange(length), torch.as_tensor(candidates[carrier])].sum()
    return scores
