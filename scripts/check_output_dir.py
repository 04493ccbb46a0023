"""Exit 2 with one line if a new training run may not write into OUTPUT_DIR (the launcher's pre-check).

It takes run_clm_lora's own flags, so the launcher passes the same ones to both, and it runs before the
launcher creates the folder or appends to its train.log.
"""

from dataclasses import dataclass
from typing import Optional

from transformers_align.cli import exit_on_user_error, option, parse_arguments
from transformers_align.training.checkpoints import check_output_dir


@dataclass
class OutputFolderArguments:
    output_dir: str = option(help="the run's output folder")
    overwrite_output_dir: bool = option(False, help="the run will overwrite the folder")
    resume_from_checkpoint: Optional[str] = option(None, help="the run will resume from this checkpoint (or auto)")
    recipe_folder: bool = option(
        False,
        help="the folder of a whole recipe (run folders, data, evaluations), not of one training run: "
        "an overwrite does not require it to hold only a run's files",
    )


def main(argv=None):
    (args,) = parse_arguments((OutputFolderArguments,), argv, __doc__)
    check_output_dir(
        args.output_dir, args.overwrite_output_dir, args.resume_from_checkpoint, run_folder=not args.recipe_folder
    )


if __name__ == "__main__":
    exit_on_user_error(main)
