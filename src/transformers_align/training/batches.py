"""The batch of every global micro-step: which stream(s) the schedule picks, which examples, this rank's share.

Everything is a pure function of the global micro-step ``m``, so every rank agrees on what step ``m``
computes and a resumed run continues exactly. Each stream runs its own epochs: epoch ``e`` of a stream
is a permutation of all its examples drawn from ``(seed, stream, e)`` (length-grouped on request, with
transformers' ``get_length_grouped_indices``), cut into global batches of the stream's per-device batch ×
``world_size`` (``per_device_batch``; the pair stream's may differ: ``per_device_pairs_batch``); the
last batch of an epoch is completed from the start of the same permutation, so every
batch is full and every example is used once per epoch. Rank ``r`` takes the ``r``-th slice of each
global batch: two ranks with batch ``b`` see exactly what one process with batch ``2b`` sees.

With ``streaming`` the streams are read in order (a shuffle buffer instead of a permutation) and a
resumed run replays the stream up to where it stopped.
"""

import itertools
import math
from typing import Dict, Iterator, List, Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler

from transformers_align.data.records import PAIRS, PARALLEL_TASK, TASK
from transformers_align.data.streams import TrainingStreams
from transformers_align.objectives.registry import OBJECTIVES
from transformers_align.training.schedule import Schedule

STREAM_IDS = {TASK: 0, PAIRS: 1, PARALLEL_TASK: 2}  # part of each stream's seed: streams shuffle independently
SHUFFLE_BUFFER = 10_000  # examples held by a streamed stream's shuffle buffer


def per_device_batches(per_device_batch: int, per_device_pairs_batch: Optional[int]) -> Dict[str, int]:
    """Each stream's per-device batch: the pairs' own where given (pairs are short, task examples long)."""
    return {TASK: per_device_batch, PAIRS: per_device_pairs_batch or per_device_batch, PARALLEL_TASK: per_device_batch}


def rank_share(global_batch, rank: int, per_device: int):
    """Rank ``rank``'s slice of a global batch: two ranks of ``b`` see what one process of ``2b`` sees."""
    return global_batch[rank * per_device : (rank + 1) * per_device]


class RankBatches:
    """What both batch sources share: the streams, the collator, the schedule, and this rank's place in
    the global batch (``per_device`` batch of each stream, ``world_size``, ``rank``, ``accumulation``)."""

    def __init__(
        self,
        streams: TrainingStreams,
        collator,
        schedule: Schedule,
        per_device_batch: int,
        world_size: int,
        rank: int,
        accumulation: int,
        seed: int,
        per_device_pairs_batch: Optional[int] = None,
    ):
        self.streams, self.collator, self.schedule, self.seed = streams, collator, schedule, seed
        self.per_device = per_device_batches(per_device_batch, per_device_pairs_batch)
        self.world_size, self.rank, self.accumulation = world_size, rank, accumulation


class StreamOrder:
    """Which examples the ``k``-th global batch of one stream holds."""

    def __init__(self, lengths: np.ndarray, global_batch: int, seed: int, stream: str, group_by_length: bool):
        self.lengths, self.global_batch, self.group_by_length = lengths, global_batch, group_by_length
        self.seed_parts = [seed, STREAM_IDS[stream]]
        self.batches_per_epoch = math.ceil(len(lengths) / global_batch)
        self._orders = {}  # the last two epochs' orders: an accumulation window may straddle an epoch's end

    def epoch_order(self, epoch: int) -> np.ndarray:
        if epoch not in self._orders:
            generator = torch.Generator().manual_seed(
                int(np.random.SeedSequence(self.seed_parts + [epoch]).generate_state(1)[0])
            )
            if self.group_by_length:
                from transformers.trainer_pt_utils import get_length_grouped_indices

                order = get_length_grouped_indices(self.lengths.tolist(), self.global_batch, generator=generator)
            else:
                order = torch.randperm(len(self.lengths), generator=generator)
            self._orders = {e: o for e, o in self._orders.items() if e == epoch - 1}
            self._orders[epoch] = np.asarray(order)
        return self._orders[epoch]

    def batch(self, k: int) -> np.ndarray:
        epoch, position = divmod(k, self.batches_per_epoch)
        order = self.epoch_order(epoch)
        indices = order[position * self.global_batch : (position + 1) * self.global_batch]
        return np.concatenate([indices, order[: self.global_batch - len(indices)]])

    def epochs(self, batches: int) -> float:
        """Passes over the stream after ``batches`` global batches (an epoch ends with its completed last batch)."""
        return batches / self.batches_per_epoch


class ScheduledBatches(RankBatches, Dataset):
    """``self[m]``: this rank's collated batch of global micro-step ``m``, with each token-mean objective's
    normaliser (its ``items_field``: ``num_items_in_batch`` on task steps).

    ``num_items_in_batch`` is the number of scored task tokens in the optimizer step (all ranks, all
    micro-steps of the accumulation window) divided by the task micro-batches in it (window × ranks):
    dividing each micro-batch's summed cross-entropy by it makes the mean over ranks and micro-steps
    that DDP and gradient accumulation take the token mean of the whole global batch. Every objective with
    an ``items_field`` gets the same from its stream's ``num_labels``.
    """

    def __init__(self, *args, group_by_length: bool, **kwargs):
        super().__init__(*args, **kwargs)
        streams, schedule, world_size, accumulation = self.streams, self.schedule, self.world_size, self.accumulation
        # In the streams' fixed order (a set's order changes with the process's string hashing): the logged
        # task_epoch / pairs_epoch keep one order.
        needed = sorted(schedule.streams_used(), key=STREAM_IDS.get)
        missing = set(needed) - set(streams.streams)
        if missing:
            raise ValueError(
                f"mode {schedule.mode!r} needs {' and '.join(sorted(missing))}, but the training data has none"
            )
        for name in needed:
            if len(streams.streams[name]) < self.per_device[name] * world_size:
                raise ValueError(
                    f"the {name} stream has {len(streams.streams[name])} examples, fewer than one global batch "
                    f"({self.per_device[name]} per device × {world_size} processes)"
                )
        self.orders = {
            name: StreamOrder(
                streams.streams[name].lengths, self.per_device[name] * world_size, self.seed, name, group_by_length
            )
            for name in needed
        }
        primary = schedule.primary_stream  # a Trainer epoch is one pass over it, with the steps between
        self.examples_per_epoch = len(streams.streams[primary])
        steps = self.orders[primary].batches_per_epoch * schedule.period
        self.micro_steps_per_epoch = math.ceil(steps / accumulation) * accumulation

    def __len__(self) -> int:
        return self.micro_steps_per_epoch

    def global_batch(self, stream: str, micro_step: int) -> np.ndarray:
        return self.orders[stream].batch(self.schedule.batches_before(micro_step, stream))

    def __getitem__(self, micro_step: int) -> Dict[str, torch.Tensor]:
        batch = {}
        for stream in self.schedule.streams(micro_step):
            mine = rank_share(self.global_batch(stream, micro_step), self.rank, self.per_device[stream])
            batch.update(self.collator(self.streams.streams[stream].rows(mine)))
        window = range(
            micro_step - micro_step % self.accumulation, micro_step - micro_step % self.accumulation + self.accumulation
        )
        for name in self.schedule.objectives(micro_step):
            objective = OBJECTIVES[name]
            if objective.items_field is None:
                continue
            steps = [m for m in window if name in self.schedule.objectives(m)]
            counts = self.streams.streams[objective.stream].num_labels
            tokens = sum(int(counts[self.global_batch(objective.stream, m)].sum()) for m in steps)
            batch[objective.items_field] = tokens / (len(steps) * self.world_size)
        return batch

    def epochs(self, micro_steps: int) -> Dict[str, float]:
        """Passes over each stream after ``micro_steps`` global micro-steps."""
        return {
            f"{stream}_epoch": round(order.epochs(self.schedule.batches_before(micro_steps, stream)), 4)
            for stream, order in self.orders.items()
        }


class StreamedBatches(RankBatches, IterableDataset):
    """The streamed counterpart of :class:`ScheduledBatches`: batches in micro-step order, read as they are needed."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.passes = {}

    def _global_batches(self, stream: str) -> Iterator[List[Dict]]:
        examples, buffer, self.passes[stream] = self.streams.streams[stream].examples, [], 0
        for epoch in itertools.count():
            shuffled = examples.shuffle(seed=self.seed + STREAM_IDS[stream], buffer_size=SHUFFLE_BUFFER)
            shuffled.set_epoch(epoch)
            for example in shuffled:
                buffer.append(example)
                if len(buffer) == self.per_device[stream] * self.world_size:
                    yield buffer
                    buffer = []
            self.passes[stream] = epoch + 1

    def __iter__(self):
        readers = {stream: self._global_batches(stream) for stream in self.streams.streams}
        for start in itertools.count(0, self.accumulation):
            window = [
                (m, {stream: next(readers[stream]) for stream in self.schedule.streams(m)})
                for m in range(start, start + self.accumulation)
            ]
            normalisers = {}  # objective -> its items field and value over the window
            for name in self.schedule.composed:
                objective = OBJECTIVES[name]
                drawn_batches = [drawn[objective.stream] for m, drawn in window if name in self.schedule.objectives(m)]
                if objective.items_field is not None and drawn_batches:
                    tokens = sum(row["num_labels"] for rows in drawn_batches for row in rows)
                    normalisers[name] = (objective.items_field, tokens / (len(drawn_batches) * self.world_size))
            for m, drawn in window:
                batch = {}
                for stream, rows in drawn.items():
                    batch.update(self.collator(rank_share(rows, self.rank, self.per_device[stream])))
                batch.update(dict(normalisers[name] for name in self.schedule.objectives(m) if name in normalisers))
                yield batch

    def epochs(self, micro_steps: int) -> Dict[str, float]:
        return {f"{stream}_epoch": float(self.passes[stream]) for stream in sorted(self.passes, key=STREAM_IDS.get)}


class MicroStepSampler(Sampler):
    """Yields ``[m]`` for the global micro-steps of the current Trainer epoch (set by ``set_epoch``)."""

    def __init__(self, micro_steps_per_epoch: int):
        self.micro_steps_per_epoch, self.epoch = micro_steps_per_epoch, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.micro_steps_per_epoch

    def __iter__(self):
        first = self.epoch * self.micro_steps_per_epoch
        return ([m] for m in range(first, first + self.micro_steps_per_epoch))


def only_item(items):
    """The DataLoader's collate function: each ``[m]`` is one already collated batch."""
    return items[0]


class ScheduledDataLoader(DataLoader):
    """A DataLoader over global micro-steps; the Trainer's ``set_epoch`` moves it to the next range of micro-steps."""

    def __init__(self, scheduled: ScheduledBatches, **kwargs):
        super().__init__(scheduled, batch_sampler=MicroStepSampler(len(scheduled)), collate_fn=only_item, **kwargs)

    def set_epoch(self, epoch: int) -> None:
        self.batch_sampler.set_epoch(epoch)
