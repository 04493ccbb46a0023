"""Cross-lingual in-context-learning accuracy (AFP's XNLI, PAWS-X, XCOPA, XStoryCloze, XWinograd) of a local model."""
import argparse

import torch

from transformers_align.data.jsonl import write_json
from transformers_align.evaluation.generation import load_model_and_tokenizer
from transformers_align.evaluation.icl import TASKS, evaluate_icl, format_table

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def comma_list(text: str):
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="local model folder (never downloaded)")
    parser.add_argument("--peft-model-id", help="local folder of a PEFT adapter to put on the model")
    parser.add_argument("--tasks", type=comma_list, default=list(TASKS), help=f"comma-separated, from {','.join(TASKS)}")
    parser.add_argument("--shots", type=lambda text: [int(k) for k in comma_list(text)], default=[0, 5],
                        help="comma-separated demonstration counts (default 0,5)")
    parser.add_argument("--prompt-lang", default="en", help="language of the demonstrations and the prompt wording")
    parser.add_argument("--test-lang", type=comma_list, default=["zh"], help="comma-separated test languages")
    parser.add_argument("--data-dir", default="data_example/icl", help="folder in the layout of docs/afp.md")
    parser.add_argument("--output-json", help="write settings, per-setting results and averages here")
    parser.add_argument("--seed", type=int, default=0, help="seed of the demonstration draw")
    parser.add_argument("--batch-size", type=int, default=8, help="sequences per forward pass")
    parser.add_argument("--length-normalize", action="store_true",
                        help="rank candidates by log-likelihood per character (the table shows acc_norm)")
    parser.add_argument("--device", help="torch device (default cuda if available, else cpu)")
    parser.add_argument("--dtype", choices=list(DTYPES), help="default bfloat16 on GPU, float32 on CPU")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    model, tokenizer = load_model_and_tokenizer(args.model, args.peft_model_id, args.device, DTYPES.get(args.dtype))
    report = evaluate_icl(model, tokenizer, args.data_dir, args.tasks, args.shots, args.prompt_lang, args.test_lang,
                          seed=args.seed, batch_size=args.batch_size)
    report["settings"].update(model=args.model, peft_model_id=args.peft_model_id)
    print(format_table(report, "acc_norm" if args.length_normalize else "acc"))
    if args.output_json:
        write_json(args.output_json, report)
    return report


if __name__ == "__main__":
    main()
