"""Layer-L representation by early exit and the aligned classes, on tiny random models of all four architectures
(modeling/representation.py, aligned.py, classes.py, settings.py)."""

import pytest
import torch

from tests.support.models import ARCHITECTURES, SENTENCES_A, SENTENCES_B, encode, make_model
from transformers_align import (
    AlignBloomForCausalLM,
    AlignLlamaForCausalLM,
    AlignQwen2ForCausalLM,
    AlignXGLMForCausalLM,
    layer_hidden_states,
    layer_representation,
    patch_model,
    pool,
)
from transformers_align.losses import info_nce
from transformers_align.modeling import DECODER_LAYOUTS

ALIGNED = {
    "llama": AlignLlamaForCausalLM,
    "qwen2": AlignQwen2ForCausalLM,
    "xglm": AlignXGLMForCausalLM,
    "bloom": AlignBloomForCausalLM,
}


def _blocks(model):
    layout = DECODER_LAYOUTS[model.config.model_type]
    return getattr(getattr(model, layout.backbone), layout.blocks)


@pytest.mark.parametrize("model_type", ARCHITECTURES)
@pytest.mark.parametrize("pooling", ["mean", "last", "max"])
def test_representation_equals_stock_hidden_states(model_type, pooling, tokenizer):
    model = make_model(model_type)
    batch = encode(tokenizer, SENTENCES_A)
    stock = model(**batch, output_hidden_states=True, use_cache=False).hidden_states
    for layer in range(1, len(_blocks(model))):  # hidden_states[N] has the final norm applied: see the next test
        expected = pool(stock[layer], batch.attention_mask, pooling)
        got = layer_representation(model, batch.input_ids, batch.attention_mask, layer, pooling)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("model_type", ARCHITECTURES)
def test_last_layer_is_the_last_block_output_without_final_norm(model_type, tokenizer):
    model = make_model(model_type)
    batch = encode(tokenizer, SENTENCES_A)
    captured = {}
    _blocks(model)[-1].register_forward_hook(lambda module, args, out: captured.update(h=out[0]))
    model(**batch, use_cache=False)
    got = layer_hidden_states(model, batch.input_ids, batch.attention_mask, len(_blocks(model)))
    torch.testing.assert_close(got, captured["h"], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("model_type", ARCHITECTURES)
def test_only_blocks_up_to_layer_run_and_the_model_is_restored(model_type, tokenizer):
    model = make_model(model_type)
    calls = [0] * len(_blocks(model))
    for index, block in enumerate(_blocks(model)):
        block.register_forward_hook(lambda module, args, out, index=index: calls.__setitem__(index, calls[index] + 1))
    lm_head_calls = []
    model.get_output_embeddings().register_forward_hook(lambda *a: lm_head_calls.append(1))
    batch = encode(tokenizer, SENTENCES_A)
    layer_representation(model, batch.input_ids, batch.attention_mask, 2)
    assert calls == [1, 1, 0, 0] and not lm_head_calls
    model(**batch)  # the full stack is back after the early exit
    assert calls == [2, 2, 1, 1]


@pytest.mark.parametrize("model_type", ARCHITECTURES)
def test_alignment_gradients_reach_only_blocks_up_to_layer_and_embeddings(model_type, tokenizer):
    model = patch_model(make_model(model_type).train(), additional_loss_layer=2)
    a, b = encode(tokenizer, SENTENCES_A), encode(tokenizer, SENTENCES_B)
    out = model(
        input_ids_parallel_0=a.input_ids,
        attention_mask_parallel_0=a.attention_mask,
        input_ids_parallel_1=b.input_ids,
        attention_mask_parallel_1=b.attention_mask,
    )
    assert out.task_loss is None and out.logits is None
    out.loss.backward()
    layout = DECODER_LAYOUTS[model_type]
    prefix = f"{layout.backbone}.{layout.blocks}."
    for name, param in model.named_parameters():
        if name.startswith(prefix):
            should = int(name[len(prefix) :].split(".")[0]) < 2
        else:
            # embeddings (and BLOOM's embedding layer norm) get gradient; the final norm and the LM head do not
            should = "emb" in name and name != "lm_head.weight"
        has = param.grad is not None and bool(param.grad.abs().sum() > 0)
        assert has == should, name


@pytest.mark.parametrize("model_type", ARCHITECTURES)
@pytest.mark.parametrize("pooling", ["mean", "last", "max"])
def test_left_and_right_padding_give_the_same_vectors(model_type, pooling, tokenizer):
    model = make_model(model_type)
    right, left = encode(tokenizer, SENTENCES_A, "right"), encode(tokenizer, SENTENCES_A, "left")
    got_right = layer_representation(model, right.input_ids, right.attention_mask, 3, pooling)
    got_left = layer_representation(model, left.input_ids, left.attention_mask, 3, pooling)
    torch.testing.assert_close(got_left, got_right, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("model_type", ARCHITECTURES)
def test_aligned_forward_losses_match_plain_recomputation(model_type, tokenizer):
    model = make_model(
        model_type,
        ALIGNED[model_type],
        additional_loss_layer=2,
        contrastive_loss_temperature=0.05,
        contrastive_loss_weight=0.3,
        contrastive_pooling_type="last",
    )
    task, a, b = encode(tokenizer, SENTENCES_A), encode(tokenizer, SENTENCES_A, "left"), encode(tokenizer, SENTENCES_B)
    labels = task.input_ids.masked_fill(task.attention_mask == 0, -100)
    out = model(
        input_ids=task.input_ids,
        attention_mask=task.attention_mask,
        labels=labels,
        input_ids_parallel_0=a.input_ids,
        attention_mask_parallel_0=a.attention_mask,
        input_ids_parallel_1=b.input_ids,
        attention_mask_parallel_1=b.attention_mask,
    )
    stock_cls = type(model).__mro__[2]
    stock = stock_cls(model.config).eval()
    stock.load_state_dict(model.state_dict())
    expected_task = stock(input_ids=task.input_ids, attention_mask=task.attention_mask, labels=labels).loss
    # Stock XGLM shifts absolute positions under left padding, so the reference side 0 is right-padded.
    a_right = encode(tokenizer, SENTENCES_A)
    side0 = pool(stock(**a_right, output_hidden_states=True).hidden_states[2], a_right.attention_mask, "last")
    side1 = pool(stock(**b, output_hidden_states=True).hidden_states[2], b.attention_mask, "last")
    expected_alignment = info_nce(side0, side1, 0.05)
    torch.testing.assert_close(out.task_loss, expected_task, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.alignment_loss, expected_alignment, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.loss, expected_task + 0.3 * expected_alignment, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("model_type", ARCHITECTURES)
def test_without_pairs_the_aligned_class_behaves_like_stock(model_type, tokenizer):
    aligned = make_model(model_type, ALIGNED[model_type])
    stock = make_model(model_type)
    stock.load_state_dict(aligned.state_dict())
    batch = encode(tokenizer, SENTENCES_B)
    labels = batch.input_ids.masked_fill(batch.attention_mask == 0, -100)
    got, expected = aligned(**batch, labels=labels), stock(**batch, labels=labels)
    torch.testing.assert_close(got.logits, expected.logits)
    torch.testing.assert_close(got.loss, expected.loss)
    assert got.task_loss is got.loss and got.alignment_loss is None
    prompt = encode(tokenizer, ["Wake me"], "left")
    kwargs = dict(max_new_tokens=5, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert torch.equal(aligned.generate(**prompt, **kwargs), stock.generate(**prompt, **kwargs))


def test_settings_are_validated_with_clear_errors(tokenizer):
    with pytest.raises(ValueError, match="additional_loss_layer=7 is out of range: this model has 4 decoder blocks"):
        make_model("llama", AlignLlamaForCausalLM, additional_loss_layer=7)
    with pytest.raises(ValueError, match="additional_loss_layer=0 .*4 decoder blocks"):
        patch_model(make_model("qwen2"), additional_loss_layer=0)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        patch_model(make_model("llama"), contrastive_loss_temperature=0)
    with pytest.raises(ValueError, match="distance_function='mse'.*cosine, dot, l2"):
        patch_model(make_model("llama"), distance_function="mse")
    with pytest.raises(TypeError, match="unknown alignment settings: layer"):
        patch_model(make_model("llama"), layer=2)
    from transformers import GPT2Config, GPT2LMHeadModel

    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=300))
    with pytest.raises(ValueError, match="'gpt2' is not supported.*bloom, llama, qwen2, xglm"):
        patch_model(gpt2)
    with pytest.raises(ValueError, match="'gpt2' is not supported.*bloom, llama, qwen2, xglm"):
        layer_representation(gpt2, torch.ones(1, 3, dtype=torch.long), torch.ones(1, 3), 1)


def test_default_layer_is_the_middle_block_and_settings_survive_save_and_load(tmp_path):
    model = make_model("llama", AlignLlamaForCausalLM, distance_function="l2", unidirectional_contrastive_loss=True)
    assert model.config.additional_loss_layer == 2
    model.save_pretrained(tmp_path)
    loaded = AlignLlamaForCausalLM.from_pretrained(tmp_path)
    for name in [
        "additional_loss_layer",
        "distance_function",
        "unidirectional_contrastive_loss",
        "contrastive_loss_temperature",
    ]:
        assert getattr(loaded.config, name) == getattr(model.config, name)
    assert loaded.config.distance_function == "l2" and loaded.config.unidirectional_contrastive_loss is True
    # A stock checkpoint loads into the aligned class; keyword arguments set the alignment settings.
    stock_dir = tmp_path / "stock"
    make_model("llama").save_pretrained(stock_dir)
    from_stock = AlignLlamaForCausalLM.from_pretrained(
        stock_dir, additional_loss_layer=3, contrastive_loss_temperature=0.05
    )
    assert from_stock.config.additional_loss_layer == 3 and from_stock.config.contrastive_loss_temperature == 0.05


@pytest.mark.parametrize("adapter", ["lora", "ia3"])
def test_peft_wrapped_model_with_gradient_checkpointing(adapter, tokenizer):
    from peft import IA3Config, LoraConfig, get_peft_model

    base = make_model("llama")
    config = (
        LoraConfig(
            r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False, task_type="CAUSAL_LM"
        )
        if adapter == "lora"
        else IA3Config(
            target_modules=["k_proj", "v_proj", "down_proj"], feedforward_modules=["down_proj"], task_type="CAUSAL_LM"
        )
    )
    peft_model = get_peft_model(base, config)
    peft_model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
    peft_model.enable_input_require_grads()
    patch_model(peft_model, additional_loss_layer=2)
    peft_model.train()
    a, b = encode(tokenizer, SENTENCES_A), encode(tokenizer, SENTENCES_B)
    out = peft_model(
        input_ids_parallel_0=a.input_ids,
        attention_mask_parallel_0=a.attention_mask,
        input_ids_parallel_1=b.input_ids,
        attention_mask_parallel_1=b.attention_mask,
    )
    out.loss.backward()
    grads = {n: p.grad for n, p in peft_model.named_parameters() if p.requires_grad}
    assert grads and all(
        ("layers.0." in n or "layers.1." in n) == (g is not None and g.abs().sum() > 0) for n, g in grads.items()
    )
    # The representation through the adapter equals stock hidden_states of the same PEFT model.
    peft_model.eval()
    with torch.no_grad():
        stock = peft_model(**a, output_hidden_states=True).hidden_states[2]
        got = layer_representation(peft_model, a.input_ids, a.attention_mask, 2)
    torch.testing.assert_close(got, pool(stock, a.attention_mask, "mean"), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("model_type", ARCHITECTURES)
def test_bf16_model_gives_finite_float32_representations(model_type, tokenizer):
    model = make_model(model_type).to(torch.bfloat16)
    batch = encode(tokenizer, SENTENCES_A)
    got = layer_representation(model, batch.input_ids, batch.attention_mask, 2)
    expected = pool(model(**batch, output_hidden_states=True).hidden_states[2], batch.attention_mask, "mean")
    assert got.dtype == torch.float32 and torch.isfinite(got).all()
    torch.testing.assert_close(got, expected, atol=2e-2, rtol=2e-2)


def test_pooling_can_leave_out_bos(tokenizer):
    model = make_model(
        "llama",
        AlignLlamaForCausalLM,
        contrastive_pooling_skip_special=True,
        contrastive_pooling_skip_first=0,
        additional_loss_layer=2,
    )
    a, b = encode(tokenizer, SENTENCES_A), encode(tokenizer, SENTENCES_B)
    out = model(
        input_ids_parallel_0=a.input_ids,
        attention_mask_parallel_0=a.attention_mask,
        input_ids_parallel_1=b.input_ids,
        attention_mask_parallel_1=b.attention_mask,
    )
    stock = (
        model(**a, output_hidden_states=True).hidden_states[2],
        model(**b, output_hidden_states=True).hidden_states[2],
    )
    no_bos = [m.clone() for m in (a.attention_mask, b.attention_mask)]
    for mask in no_bos:
        mask[:, 0] = 0  # right padding: BOS is at position 0
    expected = info_nce(pool(stock[0], no_bos[0], "mean"), pool(stock[1], no_bos[1], "mean"), 0.1)
    torch.testing.assert_close(out.alignment_loss, expected, atol=1e-5, rtol=1e-5)


def test_hard_negatives_and_one_sided_input(tokenizer):
    model = make_model(
        "qwen2",
        AlignQwen2ForCausalLM,
        additional_loss_layer=1,
        hard_negative_weight=1.0,
        contrastive_pooling_skip_first=0,
    )
    a, b, n = encode(tokenizer, SENTENCES_A), encode(tokenizer, SENTENCES_B), encode(tokenizer, SENTENCES_B[::-1])
    out = model(
        input_ids_parallel_0=a.input_ids,
        attention_mask_parallel_0=a.attention_mask,
        input_ids_parallel_1=b.input_ids,
        attention_mask_parallel_1=b.attention_mask,
        input_ids_negative=n.input_ids,
        attention_mask_negative=n.attention_mask,
    )
    reps = [layer_representation(model, x.input_ids, x.attention_mask, 1) for x in (a, b, n)]
    torch.testing.assert_close(
        out.alignment_loss,
        info_nce(*reps[:2], 0.1, hard_negatives=reps[2], hard_negative_weight=1.0),
        atol=1e-5,
        rtol=1e-5,
    )
    with pytest.raises(ValueError, match="both sides"):
        model(input_ids_parallel_0=a.input_ids, attention_mask_parallel_0=a.attention_mask)
