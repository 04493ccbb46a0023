"""No command writes over its own input: each output path is compared with the inputs before any work.

Paths are compared resolved (``..``, ``~`` and symbolic links followed). An output equal to an input is
refused, and so is an output folder that contains an input (a run that overwrites or clears its folder
would delete it). Inputs that do not exist on disk (a hub id, an optional file not given) cannot be
overwritten and are not compared.
"""

import os
from pathlib import Path
from typing import Iterable, List, Mapping, Union

from transformers_align.errors import UserError

PathValue = Union[None, str, os.PathLike, Iterable[Union[str, os.PathLike]]]


class OutputOverInputError(UserError):
    """An output path is, or contains, one of the command's inputs; the message is one line for the user."""


def _given(value: PathValue) -> List[str]:
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [os.fspath(value)] if os.fspath(value) else []
    return [os.fspath(item) for item in value if item]


def _resolved(path: str) -> Path:
    return Path(path).expanduser().resolve()


def refuse_output_over_inputs(outputs: Mapping[str, PathValue], inputs: Mapping[str, PathValue]) -> None:
    """Raise ``OutputOverInputError`` if an output (flag -> path or paths) is, or is a folder holding, an input."""
    existing = [(flag, path, _resolved(path)) for flag, value in inputs.items() for path in _given(value)]
    existing = [(flag, path, resolved) for flag, path, resolved in existing if resolved.exists()]
    for out_flag, value in outputs.items():
        for output in _given(value):
            target = _resolved(output)
            for in_flag, path, source in existing:
                if source == target:
                    raise OutputOverInputError(
                        f"{out_flag} {output} is the {in_flag} input ({source}): writing the output would "
                        f"replace it; choose another {out_flag}"
                    )
                if target in source.parents:
                    raise OutputOverInputError(
                        f"{out_flag} {output} contains the {in_flag} input {path} ({source}): writing the output "
                        f"there could replace or delete it; choose another {out_flag}"
                    )
