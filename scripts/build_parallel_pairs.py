"""EN↔X sentence pairs from the gettext catalogs of the installed django and sphinx packages, split into train/test.

Writes OUTPUT_DIR/en-X.train.tsv and en-X.test.tsv: two tab-separated columns, English (side 0) first.
"""

from dataclasses import dataclass
from pathlib import Path

from transformers_align.cli import comma_list, exit_on_user_error, option, parse_arguments
from transformers_align.data.gettext_pairs import CATALOG_PACKAGES, gettext_pairs, write_pair_files
from transformers_align.errors import UserError


@dataclass
class PairArguments:
    output_dir: str = option(aliases=["--output-dir"], help="folder for the en-X.train.tsv and en-X.test.tsv files")
    languages: str = option("fr,de,es", help="comma-separated locale folder names (fr, de, es, pt_BR, ...)")
    seed: int = option(0, help="seed of the train/test split")
    test_size: int = option(100, aliases=["--test-size"], help="held-out pairs per language")
    overwrite: bool = option(False, help="replace pair files that differ")


def check(args: PairArguments) -> None:
    if not comma_list(args.languages):
        raise UserError("--languages is empty: give comma-separated locale folder names (fr, de, es, pt_BR, ...)")
    if args.test_size < 1:
        raise UserError(f"--test_size {args.test_size}: must be at least 1")
    if Path(args.output_dir).is_file():
        raise UserError(f"--output_dir {args.output_dir} is a file; give a folder for the pair files")


def main(argv=None):
    (args,) = parse_arguments((PairArguments,), argv, __doc__)
    check(args)
    splits = gettext_pairs(comma_list(args.languages), args.test_size, args.seed)
    paths = write_pair_files(splits, args.output_dir, args.overwrite)
    for language, (train, test) in splits.items():
        print(
            f"en-{language}: {len(train)} train, {len(test)} test pairs "
            f"from the {' and '.join(CATALOG_PACKAGES)} catalogs"
        )
    print("\n".join(str(path) for path in paths))
    return splits


if __name__ == "__main__":
    exit_on_user_error(main)
