"""Generate AFP training data (bilingual, translation or crosslingual mode), or merge generated files into one."""
import argparse
import logging

from transformers_align.data.afp_generate import generate, merge_files


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-m", "--mode", default="bilingual", choices=["bilingual", "translation", "crosslingual", "merge"],
                        help="merge: shuffle --inputs together into --output-file (AFP's `cat ... | shuf`)")
    parser.add_argument("-l", "--languages", nargs="+", default=["en", "zh"],
                        help="Bactrian-X codes; the first is the pivot (and the TSV's first column)")
    parser.add_argument("-x", "--cross-probability", type=float, default=0.5)
    parser.add_argument("-c", "--change-probability", type=float, default=0.5)
    parser.add_argument("-r", "--repeat", type=float, default=1.0, help="samples per source item (int(repeat*N) in all)")
    parser.add_argument("-b", "--bactrian-dir", help="folder of Bactrian-X {lang}.json files")
    parser.add_argument("-t", "--translation-file", help="two-column TSV: source<TAB>target")
    parser.add_argument("-o", "--output-dir", default=".", help="where the AFP.*.json file is written")
    parser.add_argument("-s", "--seed", type=int, default=0)
    parser.add_argument("--inputs", nargs="+", help="merge mode: the files to merge")
    parser.add_argument("--output-file", help="merge mode: the merged file")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.mode == "merge":
        if not args.inputs or not args.output_file:
            raise SystemExit("--mode merge needs --inputs and --output-file")
        print(merge_files(args.inputs, args.output_file, args.seed))
        return
    print(generate(args.mode, args.languages, args.output_dir, args.cross_probability, args.change_probability,
                   args.repeat, args.bactrian_dir, args.translation_file, args.seed))


if __name__ == "__main__":
    main()
