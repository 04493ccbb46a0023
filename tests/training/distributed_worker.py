"""Run under ``torchrun --nproc_per_node 2`` (CPU, gloo) by test_distributed.py; writes its findings to a JSON file."""

import json
import os
import sys

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from transformers_align import patch_model
from transformers_align.tiny import byte_level_tokenizer, tiny_config

SIDE0 = ["Wake me up at five", "Will it rain tomorrow", "Play some jazz", "What is the weather"]
SIDE1 = ["Réveille-moi à cinq heures", "明天会下雨吗", "Spiele etwas Jazz", "Какая погода"]


def fresh_model(gather):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny_config("llama"))
    return patch_model(model, additional_loss_layer=2, gather_negatives_across_ranks=gather).train()


def alignment_loss(model, indices):
    tokenizer = byte_level_tokenizer()
    a = tokenizer([SIDE0[i] for i in indices], padding=True, return_tensors="pt")
    b = tokenizer([SIDE1[i] for i in indices], padding=True, return_tensors="pt")
    return model(
        input_ids_parallel_0=a.input_ids,
        attention_mask_parallel_0=a.attention_mask,
        input_ids_parallel_1=b.input_ids,
        attention_mask_parallel_1=b.attention_mask,
    ).loss


def main(output_dir):
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    per_rank = len(SIDE0) // world
    model = DistributedDataParallel(fresh_model(gather=True), find_unused_parameters=True)
    loss = alignment_loss(model, range(rank * per_rank, (rank + 1) * per_rank))
    loss.backward()  # DDP averages the gradients over the ranks
    mean_loss = loss.detach().clone()
    dist.all_reduce(mean_loss)
    mean_loss /= world

    single = fresh_model(gather=False)  # one process, the whole global batch, no gathering needed
    single_loss = alignment_loss(single, range(len(SIDE0)))
    single_loss.backward()
    grad_gap = max(
        float((p.grad - q.grad).abs().max())
        for p, q in zip(model.module.parameters(), single.parameters())
        if q.grad is not None
    )
    unused_have_no_grad = all(
        p.grad is None or float(p.grad.abs().sum()) == 0
        for n, p in model.module.named_parameters()
        if "layers.2." in n or "layers.3." in n
    )
    result = {
        "rank": rank,
        "loss": float(loss),
        "mean_loss": float(mean_loss),
        "single_loss": float(single_loss),
        "max_grad_gap": grad_gap,
        "unused_have_no_grad": unused_have_no_grad,
    }
    with open(os.path.join(output_dir, f"rank{rank}.json"), "w") as handle:
        json.dump(result, handle)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
