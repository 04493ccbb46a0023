"""EN↔X sentence pairs from the gettext catalogs of the installed django and sphinx packages, split into train/test.

Writes OUTPUT_DIR/en-X.train.tsv and en-X.test.tsv: two tab-separated columns, English (side 0) first.
"""

import argparse
import sys

from transformers_align.data.gettext_pairs import CATALOG_PACKAGES, gettext_pairs, write_pair_files


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--languages",
        default="fr,de,es",
        help="comma-separated locale folder names (fr, de, es, pt_BR, ...); default fr,de,es",
    )
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--seed", type=int, default=0, help="seed of the train/test split")
    parser.add_argument("--test-size", type=int, default=100, help="held-out pairs per language")
    parser.add_argument("--overwrite", action="store_true", help="replace pair files that differ")
    args = parser.parse_args(argv)
    languages = [code.strip() for code in args.languages.split(",") if code.strip()]
    try:
        splits = gettext_pairs(languages, args.test_size, args.seed)
        paths = write_pair_files(splits, args.output_dir, args.overwrite)
    except (ValueError, FileExistsError, ModuleNotFoundError) as error:
        sys.exit(f"build_parallel_pairs: {error}")
    for language, (train, test) in splits.items():
        print(
            f"en-{language}: {len(train)} train, {len(test)} test pairs "
            f"from the {' and '.join(CATALOG_PACKAGES)} catalogs"
        )
    print("\n".join(str(path) for path in paths))
    return splits


if __name__ == "__main__":
    main()
