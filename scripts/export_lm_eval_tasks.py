"""Export the ICL tasks (XNLI, PAWS-X, XCOPA, XStoryCloze, XWinograd) as lm-eval 0.4.x task YAMLs over local files."""
import argparse

from scripts.eval_icl import comma_list
from transformers_align.evaluation.icl import TASKS
from transformers_align.evaluation.lm_eval_export import TAG, export_tasks


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", default="data_example/icl", help="ICL data in the layout of docs/afp.md")
    parser.add_argument("--output-dir", required=True, help="where the YAMLs and their data/*.jsonl go (--include_path)")
    parser.add_argument("--tasks", type=comma_list, default=list(TASKS), help=f"comma-separated, from {','.join(TASKS)}")
    parser.add_argument("--prompt-lang", default="en", help="language of the demonstrations and the prompt wording")
    parser.add_argument("--test-lang", type=comma_list, default=["en", "zh"], help="comma-separated test languages")
    parser.add_argument("--seed", type=int, default=0, help="order of the demonstrations (as scripts.eval_icl --seed)")
    parser.add_argument("--eos-text", default="</s>", help="demonstration separator where AFP uses EOS: the model's EOS text")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    paths = export_tasks(args.data_dir, args.output_dir, args.tasks, args.prompt_lang, args.test_lang, args.seed, args.eos_text)
    for path in paths:
        print(path)
    print(f"run: lm_eval --model hf --model_args pretrained=MODEL,add_bos_token=True --include_path {args.output_dir} "
          f"--tasks {TAG} --num_fewshot 5")
    return paths


if __name__ == "__main__":
    main()
