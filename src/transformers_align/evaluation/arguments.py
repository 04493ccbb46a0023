"""Argument groups the evaluation scripts share: the model to load, generation, prompt format, MASSIVE data."""

import dataclasses
from typing import Optional

import torch

from transformers_align.cli import option
from transformers_align.data.chat import CHAT_TEMPLATE_CHOICES, use_chat_template
from transformers_align.data.massive import massive_file
from transformers_align.evaluation.generation import load_model_and_tokenizer

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclasses.dataclass
class EvaluationModelArguments:
    """A local causal LM (never downloaded), optionally with a PEFT adapter."""

    model_name_or_path: Optional[str] = option(
        None,
        aliases=["--model", "--model-name", "--base-model-name"],
        help="base model: a local folder or a model already in the Hugging Face cache (never downloaded); required",
    )
    peft_model_id: Optional[str] = option(
        None, aliases=["--peft-model-id"], help="local folder of a PEFT adapter to put on the base model"
    )
    device: Optional[str] = option(None, help="torch device; None: cuda if available, else cpu")
    dtype: Optional[str] = option(None, choices=list(DTYPES), help="None: bfloat16 on GPU, float32 on CPU")

    def inputs(self) -> dict:
        """The model and adapter folders read, under their flags (for ``refuse_output_over_inputs``)."""
        return {"--model_name_or_path": self.model_name_or_path, "--peft_model_id": self.peft_model_id}

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

    def inputs(self) -> dict:
        """The gold file read, under its flag (for ``refuse_output_over_inputs``)."""
        if self.data_file:
            return {"--data_file": self.data_file}
        return {"--data_dir": massive_file(self.lang, data_dir=self.data_dir)}


def require_model(model: EvaluationModelArguments, *_) -> None:
    """A ``check`` for :func:`parse_arguments`: the script needs ``--model_name_or_path``."""
    if not model.model_name_or_path:
        raise ValueError("the following argument is required: --model_name_or_path (or --model / --model-name)")
