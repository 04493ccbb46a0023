"""The alignment settings: what the aligned model classes read from, and save into, the model config."""

from dataclasses import asdict, dataclass, field, fields
from typing import Optional

from transformers_align.errors import UserError
from transformers_align.losses import CONTRASTIVE_DIRECTIONS, POOLING_TYPES, SIMILARITY_FUNCTIONS

# Pooled vectors count as degenerate when random pairs are this similar and true pairs barely more so.
DEGENERATE_COSINE = 0.95
DEGENERATE_GAP = 0.01


class AlignmentSettingError(UserError):
    """An alignment setting outside its allowed values; the message names it, its value and what is allowed."""


class ConfigSettings:
    """Settings (a dataclass) saved flat in the model config: an objective's hyper-parameters."""

    kind = "objective"  # what the settings are called in errors

    @classmethod
    def names(cls):
        return [f.name for f in fields(cls)]

    @classmethod
    def from_config(cls, config, **overrides):
        """Settings saved in ``config``, with ``overrides`` (None means: keep the saved value) on top."""
        values = {}
        for name in cls.names():
            value = overrides.pop(name, None)
            if value is None:
                value = getattr(config, name, None)
            if value is not None:
                values[name] = value
        if overrides:
            raise TypeError(
                f"unknown {cls.kind} settings: {', '.join(sorted(overrides))}; known: {', '.join(cls.names())}"
            )
        return cls(**values)

    def write_to(self, config) -> None:
        for name, value in asdict(self).items():
            setattr(config, name, value)


@dataclass
class AlignmentSettings(ConfigSettings):
    """Alignment hyper-parameters, stored flat in ``config.json`` under the names mid-align uses."""

    kind = "alignment"

    additional_loss_layer: Optional[int] = field(
        default=None,
        metadata={
            "help": "Decoder block whose output is aligned, 1-indexed (= hidden_states[L]). "
            "Default: the middle block, num_blocks // 2."
        },
    )
    contrastive_loss_temperature: float = field(default=0.1, metadata={"help": "InfoNCE temperature, > 0."})
    distance_function: str = field(
        default="cosine",
        metadata={"help": "Similarity of pooled states: cosine, dot, or l2 (negative Euclidean distance)."},
    )
    contrastive_loss_weight: float = field(
        default=1.0, metadata={"help": "Weight of the alignment loss in `loss`; AFP's cl_weight."}
    )
    task_loss_weight: float = field(
        default=1.0,
        metadata={
            "help": "Weight of the task loss when one call computes both losses (joint mode); AFP's clm_weight is 1.5."
        },
    )
    contrastive_pooling_type: str = field(
        default="mean", metadata={"help": "Pooling over real tokens: mean, last (padding-side safe) or max."}
    )
    contrastive_pooling_skip_first: int = field(
        default=1,
        metadata={
            "help": "Leading real tokens of each sentence left out of mean/max pooling, by position (after any "
            "skipped special tokens). Real checkpoints put a massive activation on the first token in their "
            "middle layers, which makes every pooled sentence alike (cosine ~0.998); 1 removes it. "
            "0 reproduces mid-align and AFP exactly."
        },
    )
    contrastive_pooling_skip_special: bool = field(
        default=False,
        metadata={
            "help": "Leave the special tokens that open a sentence (BOS) out of the pooling. "
            "mid-align keeps them: Llama-3's BOS state is the same for every sentence."
        },
    )
    unidirectional_contrastive_loss: bool = field(
        default=False,
        metadata={"help": "Stop the gradient through side 1 (text_parallel_1), as mid-align's flag does."},
    )
    contrastive_direction: str = field(
        default="one_way",
        metadata={"help": "one_way: side 0 anchors, side 1 candidates (mid-align, AFP); symmetric: mean of both ways."},
    )
    hard_negative_weight: float = field(
        default=0.0,
        metadata={
            "help": "Logit offset on each anchor's own hard negative (SimCSE/AFP), when hard negatives are given."
        },
    )
    gather_negatives_across_ranks: bool = field(
        default=False, metadata={"help": "Use the pairs of all data-parallel ranks as negatives (AFP)."}
    )

    def resolved(self, num_blocks: int) -> "AlignmentSettings":
        """A validated copy whose layer is set, for a model with ``num_blocks`` decoder blocks."""
        layer = self.additional_loss_layer
        if layer is None:
            layer = max(1, num_blocks // 2)
        if isinstance(layer, bool) or not isinstance(layer, int):
            raise AlignmentSettingError(f"additional_loss_layer must be an integer, got {layer!r}")
        if not 1 <= layer <= num_blocks:
            raise AlignmentSettingError(
                f"additional_loss_layer={layer} is out of range: this model has {num_blocks} decoder blocks, "
                f"so the layer must be between 1 and {num_blocks}"
            )
        skip_first = self.contrastive_pooling_skip_first
        if isinstance(skip_first, bool) or not isinstance(skip_first, int) or skip_first < 0:
            raise AlignmentSettingError(f"contrastive_pooling_skip_first must be an integer >= 0, got {skip_first!r}")
        if not self.contrastive_loss_temperature > 0:
            raise AlignmentSettingError(
                f"contrastive_loss_temperature must be > 0, got {self.contrastive_loss_temperature}"
            )
        for name, value, allowed in (
            ("distance_function", self.distance_function, SIMILARITY_FUNCTIONS),
            ("contrastive_pooling_type", self.contrastive_pooling_type, POOLING_TYPES),
            ("contrastive_direction", self.contrastive_direction, CONTRASTIVE_DIRECTIONS),
        ):
            if value not in allowed:
                raise AlignmentSettingError(f"{name}={value!r} is not supported; choose one of {', '.join(allowed)}")
        return AlignmentSettings(**{**asdict(self), "additional_loss_layer": layer})

    def degeneracy_warning(self, cosine_true: float, cosine_random: float) -> Optional[str]:
        """A warning when pooled vectors are nearly parallel (true pairs ~ random pairs ~ 1), else None."""
        if not (cosine_random >= DEGENERATE_COSINE and cosine_true - cosine_random <= DEGENERATE_GAP):
            return None
        if self.contrastive_pooling_skip_first == 0 and self.contrastive_pooling_type != "last":
            fix = (
                "the likely cause is a massive activation on the first token of every sentence (an attention sink of "
                "real checkpoints); leave it out with contrastive_pooling_skip_first=1 "
                "(--contrastive_pooling_skip_first 1)"
            )
        else:
            fix = (
                "the likely cause is a few dominant dimensions at this layer; try contrastive_pooling_type=last or a "
                "larger contrastive_pooling_skip_first, or another additional_loss_layer"
            )
        return (
            f"degenerate sentence representation at layer {self.additional_loss_layer} "
            f"({self.contrastive_pooling_type} pooling, skip_first={self.contrastive_pooling_skip_first}): true pairs "
            f"have cosine {cosine_true:.4f} and random pairs {cosine_random:.4f}, so the alignment loss can barely "
            f"tell translations apart; {fix}"
        )
