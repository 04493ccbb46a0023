"""Export the ICL tasks (XNLI, PAWS-X, XCOPA, XStoryCloze, XWinograd) as lm-eval 0.4.x task YAMLs over local files."""

from dataclasses import dataclass
from typing import List

from transformers_align.cli import comma_list, exit_on_user_error, option, parse_arguments
from transformers_align.evaluation.icl import TASKS
from transformers_align.evaluation.lm_eval_export import TAG, export_tasks
from transformers_align.paths import refuse_output_over_inputs


@dataclass
class ExportArguments:
    output_dir: str = option(
        aliases=["--output-dir"], help="where the YAMLs and their data/*.jsonl go (--include_path)"
    )
    data_dir: str = option("data_example/icl", aliases=["--data-dir"], help="ICL data in the layout of docs/afp.md")
    tasks: List[str] = option(
        default_factory=lambda: list(TASKS), help=f"comma- or space-separated, from {','.join(TASKS)}"
    )
    prompt_lang: str = option(
        "en", aliases=["--prompt-lang"], help="language of the demonstrations and the prompt wording"
    )
    test_lang: List[str] = option(
        default_factory=lambda: ["en", "zh"], aliases=["--test-lang"], help="comma- or space-separated test languages"
    )
    seed: int = option(0, help="order of the demonstrations (as scripts.eval_icl --seed)")
    eos_text: str = option(
        "</s>", aliases=["--eos-text"], help="demonstration separator where AFP uses EOS: the model's EOS text"
    )

    def __post_init__(self):
        self.tasks, self.test_lang = comma_list(self.tasks), comma_list(self.test_lang)


def parse_args(argv=None):
    return parse_arguments((ExportArguments,), argv, __doc__)


def main(argv=None):
    (args,) = parse_args(argv)
    refuse_output_over_inputs({"--output_dir": args.output_dir}, {"--data_dir": args.data_dir})
    paths = export_tasks(
        args.data_dir, args.output_dir, args.tasks, args.prompt_lang, args.test_lang, args.seed, args.eos_text
    )
    for path in paths:
        print(path)
    print(
        f"run: lm_eval --model hf --model_args pretrained=MODEL,add_bos_token=True --include_path {args.output_dir} "
        f"--tasks {TAG} --num_fewshot 5"
    )
    return paths


if __name__ == "__main__":
    exit_on_user_error(main)
