"""Instance patches, and the small readers of what diffusers passes around (no family knows more than these).

`InstancePatches` shadows methods of live objects (a scheduler's `step`, a pipeline's `prepare_latents`) with
wrappers, as instance attributes, and puts back exactly what was there. `ForwardHooks` puts a wrapper around a
module's `forward` through diffusers' own `HookRegistry` / `ModelHook` (which also hands the wrapper the
pipeline's `cache_context` name), and leaves the module as it found it.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import torch

_MISSING = object()


class InstancePatches:
    """Shadow methods of objects with wrappers (instance attributes), and put back exactly what was there.

    `patch(obj, attr, make_wrapper)` sets obj.attr = make_wrapper(current obj.attr); `restore()` undoes the
    patches in reverse order: an instance attribute that was there before (e.g. accelerate's offload hook on
    `forward`, or another steplens wrapper) is put back, otherwise the attribute is removed so that the class
    method shows through again.

    As a context manager, `with InstancePatches((obj, attr, make_wrapper), ...):` applies the given patches for the
    block and restores on exit (also after an exception, or when one of them fails)."""

    def __init__(self, *patches: tuple[Any, str, Callable]):
        self._saved: list[tuple[Any, str, Any]] = []  # (object, attribute, its previous instance attribute)
        self._pending = patches

    def __enter__(self) -> "InstancePatches":
        try:
            for obj, attr, make_wrapper in self._pending:
                self.patch(obj, attr, make_wrapper)
        except BaseException:
            self.restore()
            raise
        return self

    def __exit__(self, *exc) -> bool:
        self.restore()
        return False

    def patch(self, obj, attr: str, make_wrapper) -> None:
        previous = obj.__dict__.get(attr, _MISSING)
        original = getattr(obj, attr, None)  # None: the class has no such method (e.g. __deepcopy__)
        self._saved.append((obj, attr, previous))
        setattr(obj, attr, make_wrapper(original))

    def restore(self) -> None:
        while self._saved:
            obj, attr, previous = self._saved.pop()
            if previous is _MISSING:
                obj.__dict__.pop(attr, None)
            else:
                obj.__dict__[attr] = previous


class ForwardHooks:
    """`add(module, fn)`: while added, `module(...)` runs `fn(original_forward, cache_name, args, kwargs)`.

    Carried by diffusers' `HookRegistry` (a stateful `ModelHook` with `new_forward`): diffusers' `cache_context(name)`
    hands the name ("cond", "uncond", "cond_uncond", ...) to stateful hooks, so steplens need not wrap
    `cache_context` itself. `remove()` takes the hooks out again; where the module had no instance `forward` before,
    the one diffusers leaves behind on removal is dropped too, so the class method shows through (as
    `InstancePatches` leaves it), and a registry steplens created is removed."""

    NAME = "steplens"

    def __init__(self):
        self._added: list[tuple[torch.nn.Module, bool, bool]] = []  # (module, had a forward, had a registry)

    def add(self, module: torch.nn.Module, fn: Callable) -> None:
        from diffusers.hooks import HookRegistry

        had_forward, had_registry = "forward" in module.__dict__, hasattr(module, "_diffusers_hook")
        registry = HookRegistry.check_if_exists_or_initialize(module)
        if registry.get_hook(self.NAME) is not None:
            raise RuntimeError(f"steplens' forward hook is already on this {type(module).__name__}")
        registry.register_hook(_make_hook(fn), self.NAME)
        self._added.append((module, had_forward, had_registry))

    def remove(self) -> None:
        while self._added:
            module, had_forward, had_registry = self._added.pop()
            registry = getattr(module, "_diffusers_hook", None)
            if registry is not None:
                registry.remove_hook(self.NAME, recurse=False)
                if not had_registry and not registry.hooks:
                    del module._diffusers_hook
            if not had_forward:
                module.__dict__.pop("forward", None)


def _make_hook(fn: Callable):
    from diffusers.hooks.hooks import BaseState, ModelHook, StateManager

    class _NoState(BaseState):
        def reset(self, *args, **kwargs) -> None:
            pass

    class StepHook(ModelHook):
        _is_stateful = True  # so that cache_context(name) reaches `state`

        def __init__(self):
            super().__init__()
            self.state = StateManager(_NoState)

        def new_forward(self, module, *args, **kwargs):
            context = self.state._context
            return fn(self.fn_ref.original_forward, context.name if context is not None else None, args, kwargs)

        def reset_state(self, module):
            return module

    return StepHook()


def first_output(out):
    """The sample of a transformer's output (tuple with return_dict=False, or an output dataclass)."""
    if isinstance(out, (tuple, list)):
        return out[0]
    return getattr(out, "sample", out)


def prev_sample(out):
    """The next latent in a scheduler.step output (tuple, or a SchedulerOutput)."""
    return out[0] if isinstance(out, (tuple, list)) else out.prev_sample


def with_prev_sample(out, prev: torch.Tensor):
    """A scheduler.step output of the same kind with its next latent replaced."""
    if isinstance(out, (tuple, list)):
        return (prev, *out[1:])
    out.prev_sample = prev
    return out


def hidden_states(args: tuple, kwargs: dict):
    """A transformer call's `hidden_states` argument and a function putting a replacement back."""
    if "hidden_states" in kwargs:
        return kwargs["hidden_states"], lambda h: (args, {**kwargs, "hidden_states": h})
    if args:
        return args[0], lambda h: ((h, *args[1:]), kwargs)
    raise TypeError("the transformer was called without hidden_states")


def bound_arguments(fn, args: tuple, kwargs: dict) -> dict:
    """{parameter: value} of a call fn(*args, **kwargs), defaults filled in: what a wrapper of a pipeline method
    (e.g. prepare_latents) reads, however the pipeline passed them."""
    bound = inspect.signature(fn).bind(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def changed(new: torch.Tensor, ref: torch.Tensor) -> bool:
    """Whether an edit changed the value (hooks get a copy of `ref`, so in-place edits count too)."""
    return not torch.equal(new.to(ref.device, ref.dtype), ref)


def timestep_value(timestep) -> float:
    return float(timestep.flatten()[0]) if torch.is_tensor(timestep) else float(timestep)
