"""A base for rule-based scorers (success decided by the scorer's rules), apart from the contract so that the
contract imports nothing of the registry."""

from __future__ import annotations

from .registry import find_task


class RuleBasedScorer:
    """A base for rule-based scorers: success is decided by the scorer's rules, so it takes no threshold."""

    name = "rule-based"
    tasks: tuple[str, ...] = ()  # the task families it reads (registered names); () = any

    def __init__(self, threshold: float | None = None):
        if threshold is not None:
            raise ValueError(f"the {self.name} scorer is rule-based (success by its rules); it takes no threshold, "
                             f"got {threshold}")
        self.threshold = None

    def check_task(self, task: str) -> None:
        """Refuse, before any work, samples of a family this scorer does not read (a sample of one family scored
        as another would get a meaningless score)."""
        if not self.tasks:
            return
        t = find_task(task)
        name = t.name if t is not None else task
        if name not in self.tasks:
            kind = f"{task!r} samples" + (f" (task {name!r})" if name != task else "")
            raise ValueError(f"the {self.name} scorer reads {', '.join(self.tasks)} samples, not {kind}: a sample "
                             f"of one family scored as another; drop --scorer (each task's own) or use --scorer "
                             f"{getattr(t, 'scorer', 'NAME')}")
