"""Generate AFP training data (bilingual, translation or crosslingual mode), or merge generated files into one."""

import logging
from dataclasses import dataclass
from typing import List, Optional

from transformers_align.cli import exit_on_user_error, option, parse_arguments
from transformers_align.data.afp_generate import generate, merge_files

MODES = ["bilingual", "translation", "crosslingual", "merge"]


@dataclass
class AfpDataArguments:
    mode: str = option(
        "bilingual",
        aliases=["-m"],
        choices=MODES,
        help="merge: shuffle --inputs together into --output_file (AFP's `cat ... | shuf`)",
    )
    languages: List[str] = option(
        default_factory=lambda: ["en", "zh"],
        aliases=["-l"],
        help="Bactrian-X codes; the first is the pivot (and the TSV's first column)",
    )
    cross_probability: float = option(
        0.5, aliases=["-x", "--cross-probability"], help="probability of a response in the other language"
    )
    change_probability: float = option(
        0.5, aliases=["-c", "--change-probability"], help="probability of swapping a pair's direction"
    )
    repeat: float = option(1.0, aliases=["-r"], help="samples per source item (int(repeat*N) in all)")
    bactrian_dir: Optional[str] = option(
        None, aliases=["-b", "--bactrian-dir"], help="folder of Bactrian-X {lang}.json files"
    )
    translation_file: Optional[str] = option(
        None, aliases=["-t", "--translation-file"], help="two-column TSV: source<TAB>target"
    )
    output_dir: str = option(".", aliases=["-o", "--output-dir"], help="where the AFP.*.json file is written")
    seed: int = option(0, aliases=["-s"], help="seed of every random choice")
    inputs: Optional[List[str]] = option(None, help="merge mode: the files to merge")
    output_file: Optional[str] = option(None, aliases=["--output-file"], help="merge mode: the merged file")

    def __post_init__(self):
        if self.mode == "merge" and (not self.inputs or not self.output_file):
            raise ValueError("--mode merge needs --inputs and --output_file")


def parse_args(argv=None):
    return parse_arguments((AfpDataArguments,), argv, __doc__)


def main(argv=None):
    (args,) = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.mode == "merge":
        print(merge_files(args.inputs, args.output_file, args.seed))
        return
    print(
        generate(
            args.mode,
            args.languages,
            args.output_dir,
            args.cross_probability,
            args.change_probability,
            args.repeat,
            args.bactrian_dir,
            args.translation_file,
            args.seed,
        )
    )


if __name__ == "__main__":
    exit_on_user_error(main)
