"""What an objective is: one module, one :class:`Objective` subclass, listed in ``objectives.registry``.

An objective declares
- ``name``: how the schedule (``--training_mode``, ``--objectives``) and the logs (``<name>_loss``,
  ``eval_<name>_loss``) call it;
- ``settings``: the dataclass of its hyper-parameters (fields with ``help`` metadata, a ``validated`` method),
  which become command-line flags, are saved with the run (``alignment_run_args.json``) and written into the
  model config, so a saved model computes the same loss;
- ``stream``: the training data stream its batches come from, and ``fields``: the batch fields (keyword
  arguments of the aligned forward) that make the forward compute it, ``optional_fields`` beside them;
- ``loss(model, batch)``: its unweighted loss, computed through the model (``modeling/``): the early-exit
  layer-L vectors, or the logits at the answer positions only;
- ``weight(model)``: its factor when one forward computes several objectives (joint).
"""

from typing import Dict, Optional, Tuple

import torch


class Objective:
    name: str
    stream: str
    fields: Tuple[str, ...]
    optional_fields: Tuple[str, ...] = ()
    settings: Optional[type] = None
    # A per-batch value the trainer supplies (the normaliser of a token mean over the optimizer step), or None.
    items_field: Optional[str] = None
    minimum_examples: int = 1  # fewer examples than this in an evaluation batch: the objective is left out

    @property
    def log_name(self) -> str:
        return f"{self.name}_loss"

    def all_fields(self) -> Tuple[str, ...]:
        return self.fields + self.optional_fields + ((self.items_field,) if self.items_field else ())

    def present(self, batch: Dict) -> bool:
        """Whether ``batch`` holds this objective's fields (all of them given)."""
        return all(batch.get(name) is not None for name in self.fields)

    def examples(self, batch: Dict) -> int:
        return len(batch[self.fields[0]])

    def loss(self, model, batch: Dict) -> torch.Tensor:
        raise NotImplementedError

    def weight(self, model) -> float:
        raise NotImplementedError
