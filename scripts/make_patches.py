"""Write patches/*.diff, the fork view: unified diffs that add the aligned classes to transformers v4.43.4."""

import argparse
from pathlib import Path

from tools.forkview import COMMAND, stale_files, write_fork_view


def main(argv=None):
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__)
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "patches",
        help="where the diffs go (default: the repository's patches/)",
    )
    parser.add_argument("--check", action="store_true", help="write nothing; fail if the diffs there are stale")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(args.output_dir)
        if stale:
            raise SystemExit(f"stale fork view in {args.output_dir}: {', '.join(stale)}; run `{COMMAND}`")
        return
    for name in write_fork_view(args.output_dir):
        print(args.output_dir / name)


if __name__ == "__main__":
    main()
