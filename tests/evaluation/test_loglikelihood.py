"""The chunked continuation scorer against a plain full log_softmax, on tiny models of each architecture."""

import copy

import pytest
import torch

from tests.support.models import make_model
from transformers_align.evaluation.loglikelihood import candidate_logprobs, continuation_logprobs, encode_pair

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # a tiny model: one thread is faster

TEXTS = [
    ("Premise: it rains.\nAnswer: ", "neutral"),
    ("前提：下雨了。回答：", "矛盾"),
    ("A", "B, then a much longer tail here."),
    ("The cat sat on the", " mat"),
    ("Short", " one"),
]


def plain_scores(model, requests):
    """Reference: one request at a time, full-vocabulary float32 log_softmax over the whole sequence."""
    scores = []
    for context, continuation in requests:
        ids = torch.tensor([context + continuation])
        with torch.no_grad():
            logprobs = model(input_ids=ids).logits.float().log_softmax(-1)[0]
        start = len(context)
        scores.append(sum(logprobs[t - 1, ids[0, t]].item() for t in range(start, ids.shape[1])))
    return scores


@pytest.mark.parametrize("model_type", ["llama", "qwen2", "xglm", "bloom"])
def test_chunked_scores_equal_full_log_softmax(model_type, tokenizer):
    model = make_model(model_type)
    requests = [encode_pair(tokenizer, c, x) for c, x in TEXTS]
    expected = plain_scores(model, requests)
    for batch_size, chunk_size in [(1, 1), (2, 3), (8, 512)]:
        got = continuation_logprobs(model, requests, batch_size=batch_size, chunk_size=chunk_size, progress=False)
        assert got == pytest.approx(expected, abs=1e-4)


def test_left_truncation_keeps_the_continuation(tokenizer):
    model = make_model("llama")
    context, continuation = encode_pair(tokenizer, "a long context " * 4, "end")
    got = continuation_logprobs(model, [(context, continuation)], max_length=10, progress=False)
    kept = (context + continuation)[-11:]
    split = len(kept) - len(continuation)  # " end": the context's trailing space is scored too
    assert got == pytest.approx(plain_scores(model, [(kept[:split], kept[split:])]), abs=1e-4)
    with pytest.raises(ValueError, match="does not fit"):
        continuation_logprobs(model, [(context, continuation)], max_length=2, progress=False)


def test_lora_adapter_is_scored(tokenizer):
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(
        make_model("llama"), LoraConfig(r=4, target_modules=["q_proj", "v_proj", "lm_head"], init_lora_weights=False)
    ).eval()
    requests = [encode_pair(tokenizer, c, x) for c, x in TEXTS[:3]]
    assert continuation_logprobs(model, requests, chunk_size=2, progress=False) == pytest.approx(
        plain_scores(model, requests), abs=1e-4
    )


def test_encode_pair_splits_inside_the_whole_encoding_and_leaves_the_tokenizer_alone(tokenizer):
    before = copy.deepcopy(tokenizer.__dict__.get("init_kwargs"))
    pad, side = tokenizer.pad_token, tokenizer.padding_side
    context, continuation = encode_pair(tokenizer, "Answer: ", "yes")
    # The context's trailing space is scored with the continuation, as lm-eval does.
    assert context[0] == tokenizer.bos_token_id and tokenizer.decode(continuation) == " yes"
    assert context + continuation == tokenizer("Answer: yes")["input_ids"]
    assert encode_pair(tokenizer, "", "x")[0] == [tokenizer.bos_token_id]
    assert (tokenizer.pad_token, tokenizer.padding_side, tokenizer.init_kwargs) == (pad, side, before)
    with pytest.raises(ValueError, match="empty"):
        encode_pair(tokenizer, "context", "")


@pytest.mark.parametrize("candidates", [[[5], [9], [5, 7, 11], [3, 4], [12]], [[5], [9], [21]], [[8, 8], [8, 9]]])
def test_candidate_scores_equal_one_request_per_candidate(candidates):
    model = make_model("llama")
    prompts = [[1, 17, 4, 9], [1, 30], [1, 6, 6, 6, 6, 6, 2]]
    requests = [(prompt, candidate) for prompt in prompts for candidate in candidates]
    expected = torch.tensor(plain_scores(model, requests)).view(len(prompts), len(candidates))
    for batch_size in (1, 2, 32):
        assert torch.allclose(candidate_logprobs(model, prompts, candidates, batch_size), expected, atol=1e-4)
    with pytest.raises(ValueError, match="at least one token"):
        candidate_logprobs(model, prompts, [[5], []])


def test_unsupported_architecture_is_refused_by_name():
    """The backbone is found through the modeling registry: a model type it does not list is named, not guessed at."""
    from transformers import GPT2Config, GPT2LMHeadModel

    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50)).eval()
    with pytest.raises(ValueError, match="'gpt2' is not supported; supported model types: bloom, llama, qwen2, xglm"):
        continuation_logprobs(gpt2, [([1, 2], [3])], progress=False)
