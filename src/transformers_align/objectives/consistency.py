"""Output consistency across translations (``modeling.consistency``): a task example and the same prompt
translated, followed by the same target, should give the same next-token distributions over the target.

It needs no labels for the translated side beyond the shared target, so translated prompts of the training
examples are enough (the parallel task rows of docs/training_data.md).
"""

from dataclasses import dataclass, field

from transformers_align.modeling.consistency import CONSISTENCY_DIRECTIONS, consistency_loss
from transformers_align.modeling.settings import AlignmentSettingError, ConfigSettings
from transformers_align.objectives.base import Objective


@dataclass
class ConsistencySettings(ConfigSettings):
    """Consistency hyper-parameters, saved flat in the model config."""

    kind = "consistency"

    consistency_loss_weight: float = field(
        default=1.0, metadata={"help": "Weight of the consistency loss in `loss` when one call computes several."}
    )
    consistency_direction: str = field(
        default="one_way",
        metadata={
            "help": "one_way: KL(source || translation) with the source side detached (the model's own "
            "source-language behaviour is the teacher); symmetric: the mean of both KLs, gradients through both."
        },
    )

    def validated(self) -> "ConsistencySettings":
        if self.consistency_direction not in CONSISTENCY_DIRECTIONS:
            raise AlignmentSettingError(
                f"consistency_direction={self.consistency_direction!r} is not supported; "
                f"choose one of {', '.join(CONSISTENCY_DIRECTIONS)}"
            )
        if not self.consistency_loss_weight >= 0:
            raise AlignmentSettingError(f"consistency_loss_weight must be >= 0, got {self.consistency_loss_weight}")
        return self


class ConsistencyObjective(Objective):
    name = "consistency"
    stream = "parallel_task"
    fields = tuple(
        f"{kind}_consistency_{side}" for side in (0, 1) for kind in ("input_ids", "attention_mask", "labels")
    )
    items_field = "consistency_num_items"  # scored target tokens of the optimizer step per micro-batch
    settings = ConsistencySettings

    def loss(self, model, batch):
        side_0, side_1 = (tuple(batch[name] for name in self.fields[3 * side : 3 * side + 3]) for side in (0, 1))
        direction = ConsistencySettings.from_config(model.config).validated().consistency_direction
        return consistency_loss(model, side_0, side_1, direction, num_items=batch.get(self.items_field))

    def weight(self, model) -> float:
        return ConsistencySettings.from_config(model.config).validated().consistency_loss_weight
