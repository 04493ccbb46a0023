"""Optional dependencies: the core install (``pip install transformers_align``) brings what the modeling, the
losses and the trainer need; DeepSpeed, the evaluation metrics and plotting are extras, imported where used."""

import importlib

from transformers_align.errors import UserError

EXTRA_OF = {  # module -> the extra that installs it (pyproject.toml [project.optional-dependencies])
    "deepspeed": "deepspeed",
    "seqeval": "metrics",
    "sacrebleu": "metrics",
    "matplotlib": "plot",
}


class MissingExtraError(UserError, ImportError):
    """An optional dependency the command needs is not installed; the message names the extra."""


def require(module: str, purpose: str):
    """Import and return ``module`` (dotted: ``sacrebleu.metrics``), or raise :class:`MissingExtraError` naming
    the extra of its distribution when that is not installed."""
    top = module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] != top:
            raise  # something the installed package itself imports: not the extra missing
        raise MissingExtraError(
            f"{purpose} needs {top}, which is not installed: pip install 'transformers_align[{EXTRA_OF[top]}]' "
            f"(or pip install {top})"
        ) from None
