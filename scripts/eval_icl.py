"""Cross-lingual in-context-learning accuracy (AFP's XNLI, PAWS-X, XCOPA, XStoryCloze, XWinograd) of a local model."""

from dataclasses import dataclass
from typing import List, Optional

from transformers_align.cli import comma_list, exit_on_user_error, option, parse_arguments
from transformers_align.data.jsonl import write_json
from transformers_align.errors import UserError
from transformers_align.evaluation.arguments import (
    EvaluationModelArguments,
    check_input_files,
    check_output_files,
    require_model,
)
from transformers_align.evaluation.icl import TASKS, evaluate_icl, format_table
from transformers_align.evaluation.icl.evaluate import icl_files
from transformers_align.paths import refuse_output_over_inputs


@dataclass
class ICLArguments:
    tasks: List[str] = option(
        default_factory=lambda: list(TASKS), help=f"comma- or space-separated, from {','.join(TASKS)}"
    )
    shots: List[str] = option(default_factory=lambda: ["0", "5"], help="comma- or space-separated demonstration counts")
    prompt_lang: str = option(
        "en", aliases=["--prompt-lang"], help="language of the demonstrations and the prompt wording"
    )
    test_lang: List[str] = option(
        default_factory=lambda: ["zh"], aliases=["--test-lang"], help="comma- or space-separated test languages"
    )
    data_dir: str = option("data_example/icl", aliases=["--data-dir"], help="folder in the layout of docs/afp.md")
    output_json: Optional[str] = option(
        None, aliases=["--output-json"], help="write settings, per-setting results, counts and averages here"
    )
    seed: int = option(0, help="seed of the demonstration draw")
    batch_size: int = option(8, aliases=["--batch-size"], help="sequences per forward pass")
    length_normalize: bool = option(
        False,
        aliases=["--length-normalize"],
        help="rank candidates by log-likelihood per character (the table shows acc_norm)",
    )

    def __post_init__(self):
        self.tasks, self.test_lang = comma_list(self.tasks), comma_list(self.test_lang)
        try:
            self.shots = [int(k) for k in comma_list(self.shots)]
        except ValueError:
            raise UserError(f"--shots must be whole numbers, got {','.join(self.shots)}") from None
        unknown = [task for task in self.tasks if task not in TASKS]
        if unknown:
            raise UserError(f"--tasks {','.join(unknown)}: unknown ICL task; available: {', '.join(TASKS)}")
        if any(k < 0 for k in self.shots):
            raise UserError(f"--shots {','.join(map(str, self.shots))}: demonstration counts must be 0 or more")
        if self.batch_size < 1:
            raise UserError(f"--batch_size {self.batch_size}: must be at least 1")


def check(model: EvaluationModelArguments, args: ICLArguments) -> None:
    data_files = icl_files(args.data_dir, args.tasks, args.prompt_lang, args.test_lang)
    refuse_output_over_inputs({"--output_json": args.output_json}, {"--data_dir": data_files, **model.inputs()})
    check_input_files({"--data_dir": data_files})
    check_output_files({"--output_json": args.output_json})
    model.check()


def parse_args(argv=None):
    return parse_arguments((EvaluationModelArguments, ICLArguments), argv, __doc__, check=require_model)


def main(argv=None):
    model_args, args = parse_args(argv)
    check(model_args, args)
    model, tokenizer = model_args.load()
    report = evaluate_icl(
        model,
        tokenizer,
        args.data_dir,
        args.tasks,
        args.shots,
        args.prompt_lang,
        args.test_lang,
        seed=args.seed,
        batch_size=args.batch_size,
    )
    report["settings"].update(model_name_or_path=model_args.model_name_or_path, peft_model_id=model_args.peft_model_id)
    print(format_table(report, "acc_norm" if args.length_normalize else "acc"))
    if args.output_json:
        write_json(args.output_json, report)
    return report


if __name__ == "__main__":
    exit_on_user_error(main)
