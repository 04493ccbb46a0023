"""Loading a causal LM and its tokenizer as training and evaluation both do: dtype, attention kernel, pad token."""

from pathlib import Path
from typing import Union

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING
from transformers.utils import CONFIG_NAME

from transformers_align.errors import UserError

HALF_PRECISION = (torch.float16, torch.bfloat16)  # the dtypes FlashAttention-2 runs in


def resolve_dtype(dtype: Union[None, str, torch.dtype]) -> Union[None, str, torch.dtype]:
    """``from_pretrained``'s ``torch_dtype``: a torch dtype, ``"auto"`` (the checkpoint's), or None (float32)."""
    if dtype is None or dtype == "auto" or isinstance(dtype, torch.dtype):
        return dtype
    resolved = getattr(torch, dtype, None)
    if not isinstance(resolved, torch.dtype):
        raise ValueError(f"unknown dtype {dtype!r}: use bfloat16, float16, float32 or auto")
    return resolved


def attention_implementation(requested: str, config, dtype=None) -> str:
    """``auto``: FlashAttention-2 when installed, on a GPU, in half precision and supported by the model class;
    else sdpa where supported, else eager. Any other value is returned as it is."""
    if requested != "auto":
        return requested
    model_class = MODEL_FOR_CAUSAL_LM_MAPPING[type(config)]
    weights_dtype = getattr(config, "torch_dtype", None) if dtype == "auto" else dtype
    try:
        import flash_attn  # noqa: F401

        flash = torch.cuda.is_available() and weights_dtype in HALF_PRECISION and model_class._supports_flash_attn_2
    except ImportError:
        flash = False
    if flash:
        return "flash_attention_2"
    return "sdpa" if model_class._supports_sdpa else "eager"


def with_pad_token(tokenizer):
    """``tokenizer`` itself, given EOS as its pad token where it has none (labels pad with -100, masks hide pads)."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # as mid-align does for Llama-3
    return tokenizer


def load_tokenizer(name_or_path: str, local_files_only: bool = False):
    """The tokenizer, with a pad token (:func:`with_pad_token`)."""
    return with_pad_token(AutoTokenizer.from_pretrained(name_or_path, local_files_only=local_files_only))


def load_causal_lm(
    name_or_path: str,
    dtype: Union[None, str, torch.dtype] = None,
    attn_implementation: str = "auto",
    local_files_only: bool = False,
):
    """The ``*ForCausalLM`` in ``dtype`` (see :func:`resolve_dtype`) with attention kernel ``attn_implementation``."""
    dtype = resolve_dtype(dtype)
    config = AutoConfig.from_pretrained(name_or_path, local_files_only=local_files_only)
    return AutoModelForCausalLM.from_pretrained(
        name_or_path,
        torch_dtype=dtype,
        local_files_only=local_files_only,
        attn_implementation=attention_implementation(attn_implementation, config, dtype),
    )


class ModelFolderError(UserError):
    """A model flag names no folder with a readable Hugging Face config; the message is one line for the user."""


def check_model_folder(path, flag: str = "--model_name_or_path"):
    """The config of the model ``path`` names (a local folder, or a model already in the Hugging Face cache),
    read without loading any weights; a missing folder or an unreadable ``config.json`` is a
    :class:`ModelFolderError` naming ``flag``."""
    if not path:
        raise ModelFolderError(f"{flag} is required: a model folder with a config.json")
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ModelFolderError(f"{flag} {path} is a file; give the model's folder (with config.json)")
    if not folder.exists() and (folder.is_absolute() or str(path).startswith((".", "~"))):
        raise ModelFolderError(f"{flag} {path}: no such folder; give a model folder with a config.json")
    if folder.is_dir() and not (folder / CONFIG_NAME).is_file():
        adapter = (
            " (it holds adapter_config.json: an adapter, not a base model)"
            if (folder / "adapter_config.json").is_file()
            else ""
        )
        raise ModelFolderError(f"{flag} {path} has no {CONFIG_NAME}: it is not a Hugging Face model folder{adapter}")
    try:
        return AutoConfig.from_pretrained(str(folder) if folder.is_dir() else path, local_files_only=True)
    except (OSError, ValueError, KeyError) as error:  # no such folder or cached model; bad JSON; unknown type
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        where = folder / CONFIG_NAME if folder.is_dir() else path
        raise ModelFolderError(
            f"{flag} {path}: cannot read a model config from {where} ({reason}); give a model folder with a "
            "complete config.json (models are never downloaded)"
        ) from None
