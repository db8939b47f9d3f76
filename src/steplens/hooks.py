"""Named, step-aware hooks: record or edit `blocks.i`, the latent x_s or x0_hat at chosen steps.

    hooks = Hooks(model)
    hooks.record("blocks.3", steps=range(5), reduce="energy")     # per-token L2 norm, (B, L)
    hooks.edit("latent", steps=[7], fn=lambda x, ctx: torch.randn_like(x))
    with hooks:                                                   # attached; removed on exit, even after an error
        out = model.generate(samples, seeds, hooks=hooks)
    hooks.records[("blocks.3", 0, "cond", None)]                  # (point, step, branch, expert) -> tensor

Points are the model's module names (any `named_modules()` name, e.g. `blocks.12`), plus `latent`
(x_s, before the model sees it), `v` (the guided velocity) and `x0` (x0_hat). Module hooks see the
module's output, split by CFG branch as the step context says; `edit(..., on="update")` edits a
block's own update (output - input) instead of the residual stream it returns. Nothing here knows a particular
model: it asks the model contract (steplens.contract) for `block_names` and `modules()` -> {expert name or None:
nn.Module}.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch

from .context import StepContext, current

SAMPLER_POINTS = ("latent", "v", "x0")
REDUCTIONS = ("full", "energy", "mean", "norm")
Fn = Callable[[torch.Tensor, StepContext], torch.Tensor]


def reduce_tensor(t: torch.Tensor, how) -> torch.Tensor:
    """full: the tensor; energy: L2 norm over the last dim (per token); mean: mean over tokens;
    norm: one L2 norm per sample; a (D, k) tensor: projection on k directions; a callable: applied."""
    if callable(how) and not isinstance(how, (str, torch.Tensor)):
        return how(t)
    if isinstance(how, torch.Tensor):
        return t @ how.to(t.dtype)
    if how == "full":
        return t
    if how == "energy":
        return t.norm(dim=-1)
    if how == "mean":
        return t.mean(dim=tuple(range(1, t.dim() - 1))) if t.dim() > 2 else t
    if how == "norm":
        return t.flatten(1).norm(dim=1)
    raise ValueError(f"unknown reduction {how!r}; allowed: {', '.join(REDUCTIONS)}, a (D, k) tensor or a callable")


@dataclass
class HookSpec:
    point: str
    steps: frozenset[int] | None  # None: every step
    branch: str | None  # "cond", "uncond" or None (all)
    expert: str | None  # None: whichever expert runs
    kind: str  # "record" or "edit"
    reduce: object = "full"
    fn: Fn | None = None
    label: str | None = None  # records go under "point:label" instead of "point"
    on: str = "output"  # module edits: "output" (the residual stream) or "update" (output - input)

    def wants(self, ctx: StepContext | None, expert: str | None) -> bool:
        if ctx is None:
            return False
        if self.steps is not None and ctx.step not in self.steps:
            return False
        return self.expert is None or self.expert == expert


@dataclass
class Hooks:
    """A set of hooks on one model; use as a context manager around sampling."""

    model: object
    num_steps: int | None = None  # when given, step indices are checked against it
    specs: list[HookSpec] = field(default_factory=list)
    records: dict[tuple, torch.Tensor] = field(default_factory=dict)
    sink: Callable[[tuple, torch.Tensor], None] | None = None  # e.g. a disk writer for large records
    _handles: list = field(default_factory=list)

    # -- building -------------------------------------------------------------------------------
    def _experts(self) -> dict:
        return self.model.modules()  # the model contract: {expert name or None: nn.Module}

    def _check(self, point: str, steps, branch, expert) -> tuple[frozenset[int] | None, str | None]:
        experts = self._experts()
        if expert is not None and expert not in experts:
            names = [e for e in experts if e is not None]
            raise ValueError(f"expert {expert!r} is not in this model; it has "
                             f"{', '.join(names) if names else 'one expert only (use expert=None)'}")
        if point not in SAMPLER_POINTS:
            for mod in experts.values():
                try:
                    mod.get_submodule(point)
                except AttributeError:
                    valid = list(self.model.block_names)
                    raise ValueError(f"unknown hook point {point!r}; valid: {', '.join(SAMPLER_POINTS)}, "
                                     f"{valid[0]} … {valid[-1]} ({len(valid)} blocks)" if valid else
                                     f"unknown hook point {point!r}") from None
        elif expert is not None:
            raise ValueError(f"point {point!r} belongs to the sampler, not to an expert; drop expert={expert!r}")
        if branch not in (None, "cond", "uncond"):
            raise ValueError(f"branch must be 'cond', 'uncond' or None, got {branch!r}")
        if steps is None:
            return None, branch
        steps = frozenset(int(s) for s in ([steps] if isinstance(steps, int) else steps))
        if not steps:
            raise ValueError(f"empty step selection for hook on {point!r}")
        if min(steps) < 0:
            raise ValueError(f"step {min(steps)} out of range for hook on {point!r}: steps are >= 0"
                             + (f" (0..{self.num_steps - 1})" if self.num_steps is not None else ""))
        if self.num_steps is not None:
            bad = sorted(s for s in steps if not 0 <= s < self.num_steps)
            if bad:
                raise ValueError(f"step {bad[0]} out of range for hook on {point!r}: steps are 0..{self.num_steps - 1}")
        return steps, branch

    def record(self, points: str | Iterable[str], steps=None, reduce="full", branch: str | None = None,
               expert: str | None = None, label: str | None = None) -> "Hooks":
        """Record `points` at `steps` (all if None), cloned and detached, reduced by `reduce`.

        Records are keyed (point, step, branch, expert); with `label`, the point is "point:label"
        (to record one point several ways)."""
        if isinstance(reduce, str):
            reduce_tensor(torch.zeros(1, 1, 1), reduce)  # validates the name
        for p in [points] if isinstance(points, str) else list(points):
            st, br = self._check(p, steps, branch, expert)
            self.specs.append(HookSpec(p, st, br, expert, "record", reduce, label=label))
        return self

    def edit(self, points: str | Iterable[str], fn: Fn, steps=None, branch: str | None = None,
             expert: str | None = None, on: str = "output") -> "Hooks":
        """Replace the value at `points` by fn(value, ctx) at `steps` (per CFG branch if `branch`).

        on="update": for a module, fn gets and returns the module's update (output - input)."""
        if on not in ("output", "update"):
            raise ValueError(f"on must be 'output' or 'update', got {on!r}")
        for p in [points] if isinstance(points, str) else list(points):
            st, br = self._check(p, steps, branch, expert)
            if on == "update" and p in SAMPLER_POINTS:
                raise ValueError(f"on='update' applies to modules, not to the sampler point {p!r}")
            self.specs.append(HookSpec(p, st, br, expert, "edit", fn=fn, on=on))
        return self

    def replace(self, points, value: torch.Tensor | Callable[[StepContext], torch.Tensor], **kw) -> "Hooks":
        get = value if callable(value) else (lambda ctx: value)
        return self.edit(points, lambda t, ctx: _same_shape(get(ctx), t, points), **kw)

    def add(self, points, delta: torch.Tensor, **kw) -> "Hooks":
        return self.edit(points, lambda t, ctx: t + delta.to(t), **kw)

    # -- firing ---------------------------------------------------------------------------------
    def _store(self, key: tuple, value: torch.Tensor) -> None:
        if self.sink is not None:
            self.sink(key, value)
        else:
            self.records[key] = value

    def _apply(self, point: str, t: torch.Tensor, ctx: StepContext | None, expert: str | None,
               on: str = "output") -> torch.Tensor:
        specs = [s for s in self.specs if s.point == point and s.on == on and s.wants(ctx, expert)]
        if not specs:
            return t
        chunks = list(t.chunk(len(ctx.branches))) if len(ctx.branches) > 1 else [t]
        changed = False
        for bi, br in enumerate(ctx.branches):
            for s in specs:
                if s.branch not in (None, br):
                    continue
                if s.kind == "record":
                    with torch.no_grad():
                        key = (f"{point}:{s.label}" if s.label else point, ctx.step, br, expert)
                        self._store(key, reduce_tensor(chunks[bi], s.reduce).detach().clone())
                else:
                    new = s.fn(chunks[bi], ctx)
                    if new is not chunks[bi]:
                        chunks[bi], changed = _same_shape(new, chunks[bi], point), True
        if not changed:
            return t
        return torch.cat(chunks) if len(chunks) > 1 else chunks[0]

    def on_latent(self, ctx: StepContext, x: torch.Tensor) -> torch.Tensor:
        return self._apply("latent", x, ctx, None)

    def on_velocity(self, ctx: StepContext, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self._apply("v", v, ctx, None)

    def on_x0(self, ctx: StepContext, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        return self._apply("x0", x0, ctx, None)

    def _module_hook(self, point: str, expert: str | None):
        updates = any(s.point == point and s.on == "update" for s in self.specs)

        def hook(module, args, kwargs, output):
            ctx = current()
            out = output[0] if isinstance(output, tuple) else output
            new = self._apply(point, out, ctx, expert)
            inp = args[0] if args else kwargs.get("hidden_states")  # the block's input, positional or by keyword
            if updates and isinstance(inp, torch.Tensor) and inp.shape == new.shape:
                delta = new - inp
                new_delta = self._apply(point, delta, ctx, expert, on="update")
                if new_delta is not delta:
                    new = inp + new_delta
            if new is out:
                return None
            return (new, *output[1:]) if isinstance(output, tuple) else new
        return hook

    def __enter__(self) -> "Hooks":
        self.attach()
        return self

    def __exit__(self, *exc) -> None:
        self.detach()

    @property
    def attached(self) -> bool:
        return bool(self._handles)

    def attach(self) -> None:
        """Register the module hooks (once: attaching again does nothing)."""
        if self._handles:
            return
        points = {s.point for s in self.specs if s.point not in SAMPLER_POINTS}
        for expert, mod in self._experts().items():
            for p in sorted(points):
                hook = self._module_hook(p, expert)  # with_kwargs: blocks called by keyword (LTX-2) show their input
                self._handles.append(mod.get_submodule(p).register_forward_hook(hook, with_kwargs=True))

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def attach_module_points(self) -> bool:
        """For a pipeline attachment: register the module hooks if there are module points and they are not
        attached yet; True if this call attached them (the caller then detaches them on exit)."""
        if self.attached or all(s.point in SAMPLER_POINTS for s in self.specs):
            return False
        self.attach()
        return True

    def check_run(self, n: int, what: str = "this pipeline call") -> None:
        """Refuse a run of n steps (a pipeline call, the embedded model's generate) that these hooks do not fit (made
        for other num_steps, or a step past the last)."""
        if self.num_steps is not None and self.num_steps != n:
            raise ValueError(f"the hooks were made for num_steps={self.num_steps}, but {what} runs {n} steps")
        for s in self.specs:
            if s.steps is not None and max(s.steps) >= n:
                raise ValueError(f"the hook on {s.point!r} asks for step {max(s.steps)}, but {what} runs {n} steps "
                                 f"(0..{n - 1})")

    def get(self, point: str, step: int, branch: str = "cond", expert: str | None = None) -> torch.Tensor:
        """The record at (point, step, branch, expert); with expert None, the one expert that ran then."""
        if step < 0:  # counted from the end, as in Python: -1 is the last step
            steps = sorted({k[1] for k in self.records if k[0] == point})
            n = self.num_steps if self.num_steps is not None else (steps[-1] + 1 if steps else 0)
            step += n
        key = (point, step, branch, expert)
        if key not in self.records and expert is None:
            match = [k for k in self.records if k[:3] == (point, step, branch)]
            if len(match) == 1:
                key = match[0]
        if key not in self.records:
            have = sorted({(k[0], k[2], k[3]) for k in self.records}, key=str)
            steps = sorted({k[1] for k in self.records if k[0] == point})
            raise KeyError(f"nothing recorded at {key}; recorded steps of {point!r}: {steps}; recorded points "
                           f"(point, branch, expert): {have}")
        return self.records[key]


def _same_shape(new: torch.Tensor, old: torch.Tensor, point) -> torch.Tensor:
    if not isinstance(new, torch.Tensor) or new.shape != old.shape:
        shape = getattr(new, "shape", type(new).__name__)
        raise ValueError(f"edit of {point!r} returned {tuple(shape) if hasattr(shape, '__iter__') else shape}, "
                         f"expected a tensor of shape {tuple(old.shape)}")
    return new.to(old.dtype)


class DiskSink:
    """Streams records to `<dir>/<point>@<step>@<branch>@<expert>.safetensors` (one file each, written
    atomically) so that RAM stays bounded; `load(key)` and `keys()` read them back."""

    def __init__(self, directory):
        from pathlib import Path

        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def _name(key: tuple) -> str:
        return "@".join(str(k) for k in key).replace("/", "_") + ".safetensors"

    def __call__(self, key: tuple, value: torch.Tensor) -> None:
        from safetensors.torch import save_file

        from .io.files import atomic_path

        with atomic_path(self.dir / self._name(key)) as tmp:
            save_file({"value": value.contiguous().cpu()}, str(tmp), metadata={"key": repr(key)})

    def keys(self) -> list[str]:
        return sorted(p.name[: -len(".safetensors")] for p in self.dir.glob("*.safetensors"))

    def load(self, key: tuple) -> torch.Tensor:
        from safetensors.torch import load_file

        return load_file(str(self.dir / self._name(key)))["value"]

