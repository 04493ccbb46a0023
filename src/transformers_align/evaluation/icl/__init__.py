"""Cross-lingual in-context-learning evaluation on AFP's five tasks (XNLI, PAWS-X, XCOPA, XStoryCloze, XWinograd)."""

from transformers_align.evaluation.icl.evaluate import evaluate_icl, format_table
from transformers_align.evaluation.icl.tasks import TASKS, Item, Task, get_task, render

__all__ = ["TASKS", "Item", "Task", "evaluate_icl", "format_table", "get_task", "render"]
