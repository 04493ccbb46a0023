"""Build the embedded default model: a random tiny model of a supported type and a byte-level tokenizer, offline."""

import argparse

from transformers_align.tiny import TINY_ARCHITECTURES, build_tiny_model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output-dir", required=True, help="Folder to write the model and tokenizer to.")
    parser.add_argument("--model-type", default="llama", choices=sorted(TINY_ARCHITECTURES))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(build_tiny_model(args.output_dir, args.model_type, args.seed))


if __name__ == "__main__":
    main()
