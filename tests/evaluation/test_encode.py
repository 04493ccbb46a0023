"""encode() and SentenceEncoder: the vectors the alignment loss compares, in input order, as sentence-transformers
returns them."""

import json

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

import transformers_align
from tests.support.models import SENTENCES_A, SENTENCES_B, make_model, save_random_adapter
from transformers_align.errors import UserError
from transformers_align.evaluation.encoding import SentenceEncoder, encode
from transformers_align.losses import info_nce, pool
from transformers_align.modeling import AlignLlamaForCausalLM, patch_model
from transformers_align.padding import pad_right_with_mask

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # a tiny model: one thread is faster

RECORD = {
    "additional_loss_layer": 3,
    "contrastive_pooling_type": "max",
    "contrastive_pooling_skip_first": 2,
    "contrastive_loss_temperature": 0.2,
    "contrastive_direction": "symmetric",
}


@pytest.fixture(scope="module")
def adapter_dir(tmp_path_factory):
    return save_random_adapter(tmp_path_factory.mktemp("encode"), RECORD)[1]


def collated(tokenizer, texts):
    """One side of a pair batch as the training collator builds it (special tokens, right padding)."""
    return pad_right_with_mask(tokenizer(texts).input_ids, tokenizer.pad_token_id, 8)


def test_infonce_of_the_encoded_vectors_is_the_alignment_loss_of_the_trained_model(adapter_dir):
    from peft import PeftModel

    encoder = SentenceEncoder.from_pretrained(adapter_dir, device="cpu")  # the base model comes from the adapter
    settings = encoder.settings
    assert {name: getattr(settings, name) for name in RECORD} == RECORD
    side0 = encoder.encode(SENTENCES_A, batch_size=3, convert_to_tensor=True)
    side1 = encoder.encode(SENTENCES_B, batch_size=3, convert_to_tensor=True)
    recomputed = info_nce(side0, side1, settings.contrastive_loss_temperature, direction="symmetric")

    base = json.loads((adapter_dir / "adapter_config.json").read_text())["base_model_name_or_path"]
    model = patch_model(AutoModelForCausalLM.from_pretrained(base), **RECORD)  # as training sets the model up
    model = PeftModel.from_pretrained(model, adapter_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(base)
    (ids0, mask0), (ids1, mask1) = collated(tokenizer, SENTENCES_A), collated(tokenizer, SENTENCES_B)
    with torch.no_grad():
        logged = model(
            input_ids_parallel_0=ids0,
            attention_mask_parallel_0=mask0,
            input_ids_parallel_1=ids1,
            attention_mask_parallel_1=mask1,
        ).alignment_loss
    torch.testing.assert_close(recomputed, logged, atol=1e-5, rtol=1e-5)
    # The base model alone gives other vectors: the adapter was loaded.
    without = encode(AutoModelForCausalLM.from_pretrained(base).eval(), tokenizer, SENTENCES_A, settings=settings)
    assert not torch.allclose(without, side0, atol=1e-3)


def test_vectors_are_block_outputs_pooled_in_input_order_whatever_the_batching(tokenizer):
    model = make_model("llama")
    texts = SENTENCES_A + SENTENCES_B
    vectors = encode(model, tokenizer, texts, batch_size=3, layer=2, pooling="mean", skip_first=0, progress=False)
    assert vectors.dtype == torch.float32 and vectors.shape == (len(texts), model.config.hidden_size)
    with torch.no_grad():
        for index, text in enumerate(texts):  # one sentence at a time: no padding, no sorting
            ids = torch.tensor([tokenizer(text).input_ids])
            stock = model(input_ids=ids, output_hidden_states=True).hidden_states[2]
            torch.testing.assert_close(vectors[index], pool(stock, torch.ones_like(ids), "mean")[0], atol=1e-5, rtol=0)
    single = encode(model, tokenizer, texts[5], layer=2, pooling="mean", skip_first=0, progress=False)
    torch.testing.assert_close(single, vectors[5], atol=1e-5, rtol=0)
    unit = encode(model, tokenizer, texts, 2, layer=2, pooling="mean", skip_first=0, normalize=True, progress=False)
    torch.testing.assert_close(unit, vectors / vectors.norm(dim=-1, keepdim=True), atol=1e-6, rtol=0)


def test_the_model_config_gives_the_settings_and_keywords_override_them(tokenizer):
    model = make_model("llama", AlignLlamaForCausalLM, additional_loss_layer=1, contrastive_pooling_type="last")
    encoder = SentenceEncoder(model, tokenizer)
    assert (encoder.settings.additional_loss_layer, encoder.settings.contrastive_pooling_type) == (1, "last")
    assert SentenceEncoder(model, tokenizer, layer=3).settings.additional_loss_layer == 3
    with pytest.raises(ValueError, match="out of range"):
        SentenceEncoder(model, tokenizer, layer=9)


def test_the_sentence_transformers_signature(tokenizer):
    encoder = SentenceEncoder(make_model("llama"), tokenizer)
    # As MTEB 1.x calls it: a list, a batch size, its own keywords.
    array = encoder.encode(SENTENCES_A, batch_size=2, task_name="Tatoeba", prompt_type=None)
    assert isinstance(array, np.ndarray) and array.dtype == np.float32 and array.shape == (4, 64)
    assert encoder.encode("Play jazz").shape == (64,)
    tensors = encoder.encode(SENTENCES_A, convert_to_numpy=False)
    assert isinstance(tensors, list) and torch.allclose(tensors[1], torch.from_numpy(array[1]), atol=1e-5)
    normalized = encoder.encode(SENTENCES_A, normalize_embeddings=True)
    np.testing.assert_allclose(np.linalg.norm(normalized, axis=1), 1.0, atol=1e-6)
    with pytest.raises(UserError, match="prompt"):
        encoder.encode(SENTENCES_A, prompt="query: ")
    with pytest.raises(UserError, match="text 1 is empty"):
        encoder.encode(["a", " "])


def test_exported_from_the_package():
    assert transformers_align.encode is encode and transformers_align.SentenceEncoder is SentenceEncoder
