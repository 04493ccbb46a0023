"""What the evaluation and data scripts share on the command line: argument dataclasses, parsing, user errors.

The convention is the training script's: ``HfArgumentParser`` over dataclasses, one ``--snake_case`` flag
per field with help text, and the model flag is ``--model_name_or_path`` everywhere. Earlier spellings
(``--model``, ``--model-name``, ``--peft-model-id``, ...) are kept as aliases in each field's metadata.
"""

import dataclasses
from typing import Callable, Iterable, List, Optional, Sequence, Tuple, Union

import torch
from transformers import HfArgumentParser

from transformers_align.data.chat import CHAT_TEMPLATE_CHOICES, use_chat_template
from transformers_align.data.jsonl import DataFormatError
from transformers_align.evaluation.generation import load_model_and_tokenizer

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def option(
    default=dataclasses.MISSING,
    *,
    help: str,
    aliases: Sequence[str] = (),
    default_factory=dataclasses.MISSING,
    **argparse_options,
):
    """A dataclass field for ``HfArgumentParser``: help text, old flag spellings, extra argparse options."""
    metadata = {"help": help, "aliases": list(aliases), **argparse_options}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


def comma_list(values: Union[str, Iterable[str]]) -> List[str]:
    """``"a,b"`` or ``["a,b", "c"]`` (the flag given comma- or space-separated) as ``["a", "b", "c"]``."""
    parts = [values] if isinstance(values, str) else list(values)
    return [item.strip() for part in parts for item in part.split(",") if item.strip()]


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


def require_model(model: EvaluationModelArguments, *_) -> None:
    """A ``check`` for :func:`parse_arguments`: the script needs ``--model_name_or_path``."""
    if not model.model_name_or_path:
        raise ValueError("the following argument is required: --model_name_or_path (or --model / --model-name)")


def parse_arguments(
    dataclass_types: Sequence[type],
    argv: Optional[Sequence[str]] = None,
    description: str = None,
    defaults: Optional[dict] = None,
    check: Optional[Callable] = None,
) -> Tuple:
    """Parse ``argv`` (default ``sys.argv[1:]``) into one instance per dataclass type.

    ``defaults`` overrides field defaults for this script (shown by ``--help``). ``check(*instances)`` and
    the dataclasses' ``__post_init__`` may raise ValueError: that is a usage error (one line, exit 2).
    """
    parser = HfArgumentParser(dataclass_types, description=description)
    if defaults:
        parser.set_defaults(**defaults)
    try:
        parsed = parser.parse_args_into_dataclasses(args=argv)
        if check is not None:
            check(*parsed)
    except ValueError as error:
        parser.error(str(error))
    return tuple(parsed)


def exit_on_user_error(main: Callable):
    """Run a script's ``main`` from the command line: a user's mistake (a malformed or missing file,
    missing predictions) exits non-zero with its one-line message instead of a traceback."""
    try:
        return main()
    except (DataFormatError, FileNotFoundError) as error:
        raise SystemExit(f"error: {error}") from None
