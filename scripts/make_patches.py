"""Write patches/*.diff, the fork view: unified diffs that add the aligned classes to transformers v4.43.4."""

from dataclasses import dataclass
from pathlib import Path

from tools.forkview import COMMAND, stale_files, write_fork_view
from transformers_align.cli import option, parse_arguments

REPOSITORY_PATCHES = Path(__file__).resolve().parents[1] / "patches"


@dataclass
class ForkViewArguments:
    output_dir: Path = option(
        REPOSITORY_PATCHES, aliases=["--output-dir"], help="where the diffs go (default: the repository's patches/)"
    )
    check: bool = option(False, help="write nothing; fail if the diffs there are stale")


def main(argv=None):
    (args,) = parse_arguments((ForkViewArguments,), argv, __doc__)
    if args.check:
        stale = stale_files(args.output_dir)
        if stale:
            raise SystemExit(f"stale fork view in {args.output_dir}: {', '.join(stale)}; run `{COMMAND}`")
        return
    for name in write_fork_view(args.output_dir):
        print(args.output_dir / name)


if __name__ == "__main__":
    main()
