"""The task loss without full logits: the stock loss and gradients, on tiny models of all four architectures."""

import pytest
import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from tests.support.models import ARCHITECTURES, SENTENCES_A, SENTENCES_B, encode, make_model
from transformers_align import patch_model
from transformers_align.modeling import unwrap_causal_lm
from transformers_align.modeling.causal_lm_loss import causal_lm_loss

PROMPT_TOKENS = 6  # masked like a chat prompt, so only part of each row is labelled


def _task_batch(tokenizer):
    batch = encode(tokenizer, SENTENCES_A + SENTENCES_B)
    labels = batch.input_ids.masked_fill(batch.attention_mask == 0, -100)
    labels[:, :PROMPT_TOKENS] = -100
    return dict(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=labels)


def _without_dropout(model_type):
    """An aligned model in training mode whose forward is deterministic (tiny XGLM has dropout on by default)."""
    off = dict(dropout=0.0, attention_dropout=0.0, activation_dropout=0.0) if model_type == "xglm" else {}
    return patch_model(make_model(model_type, **off)).train()


def _stock_forward(model):
    """The stock ``*ForCausalLM.forward`` of the (aligned, possibly LoRA-wrapped) model, on the same modules."""
    causal_lm = unwrap_causal_lm(model)
    stock_cls = next(cls for cls in type(causal_lm).__mro__[1:] if cls.__module__.startswith("transformers.models."))
    return lambda **inputs: stock_cls.forward(causal_lm, **inputs)


def _loss_and_gradients(forward, inputs, params):
    torch.manual_seed(1)  # same dropout masks (XGLM's dropout is on in training) for both forwards
    for param in params:
        param.grad = None
    out = forward(**inputs)
    out.loss.backward()  # not autograd.grad: reentrant checkpointing supports backward() only
    return out, [param.grad for param in params]


def _prepared(model_type, variant):
    model = patch_model(make_model(model_type))
    if "checkpointing" in variant:
        model.gradient_checkpointing_enable(
            gradient_checkpointing_kwargs={"use_reentrant": variant.endswith("reentrant")}
        )
        model.enable_input_require_grads()  # as training.run does for reentrant checkpointing
    if variant.startswith("lora"):
        model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.1, target_modules="all-linear"))
    return model.train()


@pytest.mark.parametrize("variant", ["full", "lora", "checkpointing", "lora_checkpointing_reentrant"])
@pytest.mark.parametrize("model_type", ARCHITECTURES)
def test_training_loss_and_gradients_equal_the_stock_forward(model_type, variant, tokenizer):
    model = _prepared(model_type, variant)
    inputs = _task_batch(tokenizer)
    params = [p for p in model.parameters() if p.requires_grad]
    expected, expected_grads = _loss_and_gradients(_stock_forward(model), inputs, params)
    got, grads = _loss_and_gradients(model, inputs, params)
    assert got.logits is None and expected.logits.shape[-1] == model.config.vocab_size
    torch.testing.assert_close(got.loss, expected.loss, rtol=0, atol=1e-5)
    assert torch.isfinite(got.loss) and got.loss > 0
    names = [name for name, p in model.named_parameters() if p.requires_grad]
    for name, grad, expected_grad in zip(names, grads, expected_grads):
        torch.testing.assert_close(grad, expected_grad, rtol=1e-4, atol=1e-6, msg=name)


class _LargestVocabularyTensor(TorchDispatchMode):
    """The most elements of any new tensor (not a view, like the head weight's transpose) whose last
    dimension is the vocabulary."""

    def __init__(self, vocab_size):
        super().__init__()
        self.vocab_size, self.largest = vocab_size, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage()._cdata for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)}
        for tensor in tree_flatten(out)[0]:
            if (
                isinstance(tensor, torch.Tensor)
                and tensor.dim()
                and tensor.shape[-1] == self.vocab_size
                and tensor.untyped_storage()._cdata not in inputs
            ):
                self.largest = max(self.largest, tensor.numel())
        return out


@pytest.mark.parametrize("model_type", ARCHITECTURES)
def test_no_full_logits_exist_in_forward_or_backward(model_type, tokenizer):
    model = patch_model(make_model(model_type)).train()
    inputs = _task_batch(tokenizer)
    vocab, (rows, length) = model.config.vocab_size, inputs["input_ids"].shape
    labelled_positions = int((inputs["labels"][:, 1:] != -100).sum()) + (rows if model_type == "xglm" else 0)
    with _LargestVocabularyTensor(vocab) as tracker:
        model(**inputs).loss.backward()
    assert tracker.largest == labelled_positions * vocab < rows * length * vocab


def test_chunks_give_the_same_loss_and_gradients_and_bound_the_logits(tokenizer):
    model = make_model("llama").train()
    inputs = _task_batch(tokenizer)
    hidden = model.model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).last_hidden_state
    results = []
    for chunk_size in (7, 4096):
        with _LargestVocabularyTensor(model.config.vocab_size) as tracker:
            loss = causal_lm_loss(hidden, inputs["labels"], model.config, head=model.lm_head, chunk_size=chunk_size)
            grads = torch.autograd.grad(loss, [hidden, model.lm_head.weight], retain_graph=True)
        results.append((loss, grads, tracker.largest))
    (small, small_grads, small_largest), (whole, whole_grads, _) = results
    torch.testing.assert_close(small, whole, rtol=0, atol=1e-6)
    for a, b in zip(small_grads, whole_grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    assert small_largest <= 7 * model.config.vocab_size


@pytest.mark.parametrize("as_tensor", [False, True])
@pytest.mark.parametrize("model_type", ["llama", "xglm"])
def test_num_items_in_batch_divides_the_summed_token_losses(model_type, as_tensor, tokenizer):
    model = _without_dropout(model_type)
    inputs = _task_batch(tokenizer)
    num_items = torch.tensor(37) if as_tensor else 37
    got = model(**inputs, num_items_in_batch=num_items).loss
    # Plain recomputation from the stock logits: shifted targets, summed cross-entropy over labelled tokens.
    logits = _stock_forward(model)(
        input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]
    ).logits.float()
    targets = torch.full_like(inputs["labels"], -100)
    targets[:, :-1] = inputs["labels"][:, 1:]
    if model_type == "xglm":
        targets[:, -1] = model.config.pad_token_id
    expected = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum") / 37
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_micro_batches_with_num_items_in_batch_add_up_to_the_whole_batch_mean(tokenizer):
    model = patch_model(make_model("qwen2")).train()
    inputs = _task_batch(tokenizer)
    whole = model(**inputs).loss
    total = int((inputs["labels"][:, 1:] != -100).sum())
    halves = [{name: value[part] for name, value in inputs.items()} for part in (slice(0, 3), slice(3, None))]
    assert int((halves[0]["labels"][:, 1:] != -100).sum()) != total / 2  # unequal label counts: the case that matters
    accumulated = sum(model(**half, num_items_in_batch=total).loss for half in halves)
    torch.testing.assert_close(accumulated, whole, rtol=0, atol=1e-6)


@pytest.mark.parametrize("model_type", ARCHITECTURES)
def test_logits_are_returned_when_asked_and_without_labels(model_type, tokenizer):
    model = _without_dropout(model_type)
    inputs = _task_batch(tokenizer)
    stock = _stock_forward(model)(**inputs)
    asked = model(**inputs, return_logits=True)
    torch.testing.assert_close(asked.logits, stock.logits, rtol=0, atol=0)
    torch.testing.assert_close(asked.loss, stock.loss, rtol=0, atol=1e-5)
    unlabelled = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
    assert unlabelled.loss is None and torch.equal(unlabelled.logits, stock.logits)
    model.eval()
    evaluated = model(**inputs)  # eval mode: stock behaviour, logits included
    torch.testing.assert_close(evaluated.logits, stock.logits, rtol=0, atol=0)
    assert model(**inputs, return_logits=False).logits is None


def test_a_batch_without_labels_to_learn_gives_zero_loss_and_zero_gradients(tokenizer):
    model = patch_model(make_model("bloom")).train()
    inputs = _task_batch(tokenizer)
    inputs["labels"] = torch.full_like(inputs["labels"], -100)
    out = model(**inputs)
    out.loss.backward()
    assert out.loss.item() == 0.0
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())
    with pytest.raises(ValueError, match="num_items_in_batch must be a positive number"):
        model(**inputs, num_items_in_batch=0)


def test_llama_pretraining_tp_gives_the_same_loss(tokenizer):
    model = patch_model(make_model("llama", pretraining_tp=2)).train()
    inputs = _task_batch(tokenizer)
    torch.testing.assert_close(model(**inputs).loss, _stock_forward(model)(**inputs).loss, rtol=0, atol=1e-5)


def test_joint_task_and_alignment_loss_in_training(tokenizer):
    model = patch_model(make_model("llama"), additional_loss_layer=2, task_loss_weight=1.5).train()
    inputs = _task_batch(tokenizer)
    a, b = encode(tokenizer, SENTENCES_A), encode(tokenizer, SENTENCES_B)
    pairs = dict(
        input_ids_parallel_0=a.input_ids,
        attention_mask_parallel_0=a.attention_mask,
        input_ids_parallel_1=b.input_ids,
        attention_mask_parallel_1=b.attention_mask,
    )
    out = model(**inputs, **pairs)
    assert out.logits is None
    torch.testing.assert_close(out.task_loss, _stock_forward(model)(**inputs).loss, rtol=0, atol=1e-5)
    torch.testing.assert_close(out.loss, 1.5 * out.task_loss + model(**pairs).loss, rtol=0, atol=1e-5)
