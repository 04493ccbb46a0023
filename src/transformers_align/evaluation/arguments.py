"""Argument groups the evaluation scripts share: the model to load, generation, prompt format, MASSIVE data."""

import dataclasses
from pathlib import Path
from typing import Optional

import torch

from transformers_align.cli import option
from transformers_align.data.chat import CHAT_TEMPLATE_CHOICES, use_chat_template
from transformers_align.data.jsonl import DataFormatError
from transformers_align.data.massive import PARTITIONS, load_massive, massive_file, normalize_partition, resolve_locale
from transformers_align.errors import UserError
from transformers_align.evaluation.generation import load_model_and_tokenizer
from transformers_align.merging.adapter_files import adapter_weights_file, read_adapter_config
from transformers_align.modeling.gguf_checkpoint import recorded_portable_name, resolve_portable_name
from transformers_align.modeling.loading import read_config

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclasses.dataclass
class EvaluationModelArguments:
    """A local causal LM (never downloaded), optionally with a PEFT adapter."""

    model_name_or_path: Optional[str] = option(
        None,
        aliases=["--model", "--model-name", "--base-model-name"],
        help="base model: a local folder or a model already in the Hugging Face cache (never downloaded); "
        "default: the base model the --peft_model_id adapter names",
    )
    peft_model_id: Optional[str] = option(
        None, aliases=["--peft-model-id"], help="local folder of a PEFT adapter to put on the base model"
    )
    device: Optional[str] = option(None, help="torch device; None: cuda if available, else cpu")
    dtype: Optional[str] = option(None, choices=list(DTYPES), help="None: bfloat16 on GPU, float32 on CPU")

    def inputs(self) -> dict:
        """The model and adapter folders read, under their flags (for ``refuse_output_over_inputs``)."""
        return {"--model_name_or_path": self.model_name_or_path, "--peft_model_id": self.peft_model_id}

    def check(self) -> None:
        """Before anything loads: the adapter is a PEFT adapter folder, and the base model (given, or the one
        the adapter names) a model folder with a readable config."""
        if self.peft_model_id:
            config = read_adapter_config(self.peft_model_id, "--peft_model_id")
            adapter_weights_file(self.peft_model_id, "--peft_model_id")
            if not self.model_name_or_path:
                self.model_name_or_path = adapter_base_model(self.peft_model_id, config)
                print(f"base model (from --peft_model_id {self.peft_model_id}): {self.model_name_or_path}")
        require_model(self)
        read_config(self.model_name_or_path, "--model_name_or_path", local_files_only=True)

    def load(self):
        """The model (eval mode) and its tokenizer."""
        dtype = DTYPES.get(self.dtype)
        return load_model_and_tokenizer(self.model_name_or_path, self.peft_model_id, self.device, dtype)


@dataclasses.dataclass
class GenerationArguments:
    """Batched greedy generation; each script sets its own defaults for the batch size and length."""

    batch_size: int = option(16, aliases=["--batch-size"], help="prompts per batch")
    max_new_tokens: int = option(128, aliases=["--max-new-tokens"], help="generation length limit")
    max_examples: Optional[int] = option(
        None, aliases=["--max-examples"], help="only the first N examples (quick runs)"
    )

    def __post_init__(self):
        for flag, value in (("--batch_size", self.batch_size), ("--max_new_tokens", self.max_new_tokens)):
            if value < 1:
                raise UserError(f"{flag} {value}: must be at least 1")
        if self.max_examples is not None and self.max_examples < 1:
            raise UserError(f"--max_examples {self.max_examples}: must be at least 1 (or left out for all)")


@dataclasses.dataclass
class ChatTemplateArguments:
    chat_template: str = option("model", aliases=["--chat-template"], help=f"prompt format: {CHAT_TEMPLATE_CHOICES}")

    def apply(self, tokenizer):
        """The tokenizer with the chosen chat template."""
        return use_chat_template(tokenizer, self.chat_template)


@dataclasses.dataclass
class MassiveDataArguments:
    """One locale and partition of MASSIVE's release-format JSONL files."""

    lang: str = option("en", help="2-letter code from MASSIVE_LANG_MAP or a locale like zh-TW")
    partition: str = option("test", help="train, dev (or validation) or test")
    data_dir: str = option(
        "data_example/massive",
        aliases=["--data-dir"],
        help="folder of <locale>.jsonl files in MASSIVE's release format",
    )
    data_file: Optional[str] = option(
        None, aliases=["--data-file"], help="one MASSIVE JSONL file (overrides --data_dir)"
    )

    def __post_init__(self):
        try:
            resolve_locale(self.lang)
        except ValueError as error:
            raise UserError(f"--lang {self.lang}: {error}") from None
        try:
            normalize_partition(self.partition)
        except ValueError:
            raise UserError(
                f"--partition {self.partition}: use one of {', '.join(PARTITIONS)} (or validation)"
            ) from None

    def check(self) -> None:
        """The gold file exists (before anything is read)."""
        flag, path = next(iter(self.inputs().items()))
        if not Path(path).is_file():
            raise UserError(f"{flag} {path}: no such MASSIVE file")

    def inputs(self) -> dict:
        """The gold file read, under its flag (for ``refuse_output_over_inputs``)."""
        if self.data_file:
            return {"--data_file": self.data_file}
        return {"--data_dir": massive_file(self.lang, data_dir=self.data_dir)}

    def load(self):
        """The gold records of the locale and partition."""
        try:
            return load_massive(self.lang, self.partition, self.data_file, self.data_dir)
        except DataFormatError:
            raise
        except ValueError as error:  # load_massive's remaining refusal: no records for the locale and partition
            raise DataFormatError(str(error)) from None


def adapter_base_model(adapter_dir, adapter_config: dict) -> str:
    """The base model an adapter was trained on: the folder its ``adapter_config.json`` names where that exists
    here, else the conversion its portable name (``base_model.json``) stands for on this machine."""
    named = adapter_config.get("base_model_name_or_path")
    if named and Path(named).expanduser().is_dir():
        return named
    portable = recorded_portable_name(adapter_dir)
    if portable:
        return str(resolve_portable_name(portable))
    if named and not Path(named).expanduser().is_absolute():
        return named  # a model id: read_config looks for it in the local cache
    raise UserError(
        f"--peft_model_id {adapter_dir}: its adapter_config.json names the base model {named!r}, which is not a "
        "folder here; pass --model_name_or_path"
    )


def check_output_files(outputs: dict) -> None:
    """Each output file (flag -> path; None: not written) can be written: not a folder, not under a file."""
    for flag, path in outputs.items():
        if not path:
            continue
        path = Path(path).expanduser()
        if path.is_dir():
            raise UserError(f"{flag} {path} is a folder; give a file name")
        blocking = next((parent for parent in path.parents if parent.exists() and not parent.is_dir()), None)
        if blocking is not None:
            raise UserError(f"{flag} {path}: {blocking} is a file, so no file can be written under it")


def check_input_files(inputs: dict) -> None:
    """Each input file (flag -> path or list of paths; None: not given) exists and is a file."""
    for flag, value in inputs.items():
        for path in [value] if isinstance(value, (str, Path)) else value or []:
            if not Path(path).expanduser().is_file():
                raise UserError(f"{flag} {path}: no such file")


def require_model(model: EvaluationModelArguments, *_) -> None:
    """A ``check`` for :func:`parse_arguments`: the script needs a model, or an adapter that names its base."""
    if not (model.model_name_or_path or model.peft_model_id):
        raise UserError(
            "the following argument is required: --model_name_or_path (or --model / --model-name), "
            "or --peft_model_id, whose adapter names its base model"
        )
