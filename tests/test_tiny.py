"""tiny: the byte-level tokenizer's table is byte-level BPE's, so token id = UTF-8 byte for any script."""

from tokenizers import pre_tokenizers
from transformers.models.gpt2.tokenization_gpt2 import bytes_to_unicode

from transformers_align.tiny import byte_level_tokenizer, byte_symbols


def test_byte_symbols_are_the_byte_level_bpe_table():
    assert byte_symbols() == bytes_to_unicode()  # GPT-2's table, the reference the library no longer imports
    assert set(byte_symbols().values()) == set(pre_tokenizers.ByteLevel.alphabet())


def test_token_ids_are_the_utf8_bytes():
    tokenizer = byte_level_tokenizer()
    text = "Tab\there, ü, 明天, Какая, 🎵 and\ncontrol \x01"
    assert tokenizer(text, add_special_tokens=False)["input_ids"] == list(text.encode("utf-8"))
    assert tokenizer.decode(tokenizer(text)["input_ids"], skip_special_tokens=True) == text
