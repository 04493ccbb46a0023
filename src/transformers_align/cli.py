"""The command-line convention of every script: ``HfArgumentParser`` over dataclasses, one ``--snake_case``
flag per field with help text, ``--model_name_or_path`` for the model everywhere, and earlier spellings
(``--model``, ``--model-name``, ``--output-dir``, ...) kept as aliases in each field's metadata.

A user's mistake on the command line or in a file ends in one line and a non-zero exit, never a traceback.
The argument groups live with what they configure: ``training.arguments``, ``evaluation.arguments``.
"""

import dataclasses
import sys
from typing import Callable, Iterable, List, Optional, Sequence, Tuple, Union

from transformers import HfArgumentParser

from transformers_align.errors import UserError


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
    """Run a script's ``main`` from the command line: a user's mistake (``UserError``: a bad flag, setting,
    file or folder; a missing file) prints one line on stderr and exits 2 instead of a traceback."""
    try:
        return main()
    except (UserError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
