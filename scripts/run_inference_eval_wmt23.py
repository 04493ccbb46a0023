"""Translate a local WMT-style test set with a local model (+ PEFT adapter) and score BLEU, chrF and, if available, COMET."""
import argparse

from transformers_align.data.chat import chat_prompt
from transformers_align.data.jsonl import write_json, write_jsonl
from transformers_align.evaluation.generation import add_generation_arguments, generate_greedy, model_from_arguments
from transformers_align.evaluation.wmt import (
    comet_score,
    read_test_set,
    read_translations,
    score_translations,
    translation_system_prompt,
    wmt_files,
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    add_generation_arguments(parser, batch_size=8, max_new_tokens=256, model_required=False)
    parser.add_argument("--source-lang", default="de", help="source language code (default de)")
    parser.add_argument("--lang", default="en", help="target language code (default en)")
    parser.add_argument("--data-dir", default="data_example/wmt",
                        help="folder with <src>-<tgt>.<src> and <src>-<tgt>.<tgt>, one segment a line")
    parser.add_argument("--source-file", help="source segments, one a line (overrides --data-dir)")
    parser.add_argument("--reference-file", help="reference segments, one a line (overrides --data-dir)")
    parser.add_argument("--output-file", help="translations JSONL (default wmt_<src>-<tgt>.jsonl)")
    parser.add_argument("--metrics-file", help="metrics JSON (default wmt_<src>-<tgt>_metrics.json)")
    parser.add_argument("--evaluation-only", action="store_true", help="score an existing --output-file")
    parser.add_argument("--comet-model", help="local COMET checkpoint (.ckpt or model folder); COMET is skipped without it")
    parser.add_argument("--comet-batch-size", type=int, default=16)
    args = parser.parse_args(argv)
    if not args.evaluation_only and not args.model_name:
        parser.error("--model-name is required unless --evaluation-only")
    return args


def main(argv=None):
    args = parse_args(argv)
    pair = f"{args.source_lang}-{args.lang}"
    default_source, default_reference = wmt_files(args.data_dir, args.source_lang, args.lang)
    sources, references = read_test_set(args.source_file or default_source, args.reference_file or default_reference)
    sources, references = sources[:args.max_examples], references[:args.max_examples]
    output_file = args.output_file or f"wmt_{pair}.jsonl"
    if args.evaluation_only:
        hypotheses = read_translations(output_file, len(sources))
    else:
        model, tokenizer = model_from_arguments(args)
        system = translation_system_prompt(args.source_lang, args.lang)
        prompts = [chat_prompt(tokenizer, system, source) for source in sources]
        hypotheses = generate_greedy(model, tokenizer, prompts, args.batch_size, args.max_new_tokens, desc=f"WMT {pair}")
        write_jsonl(output_file, [{"index": i, "source": s, "reference": r, "prompt": p, "prediction": h}
                                  for i, (s, r, p, h) in enumerate(zip(sources, references, prompts, hypotheses))])
        print(f"wrote {len(hypotheses)} translations to {output_file}")
    metrics = score_translations(hypotheses, references, args.lang)
    metrics["comet"], metrics["comet_note"] = comet_score(sources, hypotheses, references, args.comet_model,
                                                          args.comet_batch_size)
    for note in (metrics["bleu_tokenizer_note"], metrics["comet_note"]):
        if note:
            print(note)
    print(f"{pair}: BLEU {metrics['bleu']:.2f} ({metrics['bleu_signature']}), chrF {metrics['chrf']:.2f}, "
          f"COMET {'skipped' if metrics['comet'] is None else round(metrics['comet'], 4)}")
    write_json(args.metrics_file or f"wmt_{pair}_metrics.json", metrics)
    return metrics


if __name__ == "__main__":
    main()
