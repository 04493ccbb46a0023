"""torchrun as the recipes start it, without torchrun's traceback after a rank's one-line error.

A rank that stops at a user's mistake or a diverged run prints one line (rank 0 only) and exits with its
code; torchrun then raises ``ChildFailedError``, whose traceback says nothing the line did not. Any other
failure (a bug, a crash, a signal) keeps torchrun's full report.
"""

import sys

USER_ERROR_EXIT = 2  # run_clm_lora: the user's arguments, files or folders
DIVERGED_EXIT = 3  # run_clm_lora: a non-finite loss or gradient norm stopped every rank


def main(argv=None) -> None:
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    try:
        run(parse_args(sys.argv[1:] if argv is None else argv))
    except ChildFailedError as error:
        _, first = error.get_first_failure()
        if first.exitcode not in (USER_ERROR_EXIT, DIVERGED_EXIT):
            raise
        raise SystemExit(first.exitcode) from None


if __name__ == "__main__":
    main()
