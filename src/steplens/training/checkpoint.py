"""Training checkpoints as safetensors (never pickles), written atomically (steplens.models.weights).

A training checkpoint holds `model.*`, `ema.*` and the optimizer's tensors `opt.<i>.<key>`;
its metadata holds the JSON of the training config, the architecture, the step and the
optimizer's param groups.
"""

from __future__ import annotations

import json

import torch

from ..models.weights import atomic_save, read_safetensors
from .lr import decay_start


def save_checkpoint(path, model, ema, opt, step: int, train_config: dict, arch: dict) -> None:
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update({f"ema.{k}": v for k, v in ema.state_dict().items()})
    sd = opt.state_dict()
    for idx, st in sd["state"].items():
        for key, val in st.items():
            tensors[f"opt.{idx}.{key}"] = val if torch.is_tensor(val) else torch.tensor(val)
    meta = {
        "format": "steplens-checkpoint-1",
        "step": str(step),
        "train_config": json.dumps(train_config),
        "arch": json.dumps(arch),
        "param_groups": json.dumps(sd["param_groups"]),
    }
    atomic_save(tensors, path, meta)


def _check_schedule(path, saved: dict, given: dict, step: int) -> None:
    """`steps` and `decay_steps` may change on resume only where the LR of the steps already taken stays the same:
    neither the saved nor the given schedule may have begun its decay before the checkpoint's step, unless both
    decay alike (from the same step over the same length: a run shorter than its decay starts it at step 0 whatever
    its length)."""
    was, now = (saved["steps"], saved.get("decay_steps") or 0), (given["steps"], given.get("decay_steps") or 0)
    same_decay = decay_start(*was) == decay_start(*now) and was[1] == now[1]  # e.g. both from step 0, as long
    if not same_decay and min(decay_start(*was), decay_start(*now)) < step:
        raise ValueError(
            f"checkpoint {path} is at step {step}: steps={now[0]}, decay_steps={now[1]} would change the learning "
            f"rate of steps already taken (it was trained with steps={was[0]}, decay_steps={was[1]}); choose a "
            f"schedule whose decay starts at step {step} or later")


def _at_default(key: str, value, defaults: dict | None) -> bool:
    """A config key missing from a saved checkpoint is fine at an empty value or at its default."""
    if value in ({}, None, []):
        return True
    return defaults is not None and key in defaults and json.dumps(defaults[key]) == json.dumps(value)


def load_checkpoint(path, model, ema, opt, expect_config: dict | None = None, defaults: dict | None = None) -> int:
    """Load a training checkpoint; with `expect_config`, refuse one trained with another config (naming the keys)
    except in the schedule's length; a key added to the config since it was saved is fine at its default
    (`defaults`, or an empty value)."""
    tensors, meta = read_safetensors(path)
    if meta.get("format") != "steplens-checkpoint-1":
        raise ValueError(f"{path} is not a steplens training checkpoint (format {meta.get('format')!r})")
    if expect_config is not None:
        saved = json.loads(meta["train_config"])
        diff = {k: (saved.get(k), v) for k, v in expect_config.items()
                if k not in ("steps", "decay_steps", "threads", "eval_every", "eval_count", "ckpt_every")
                and (k in saved or not _at_default(k, v, defaults))
                and json.dumps(saved.get(k)) != json.dumps(v)}
        if diff:
            raise ValueError(f"checkpoint {path} was trained with another config; differing (saved, given): {diff}")
        _check_schedule(path, saved, expect_config, int(meta["step"]))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
    state: dict[int, dict] = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, idx, key = k.split(".", 2)
            state.setdefault(int(idx), {})[key] = v
    opt.load_state_dict({"state": state, "param_groups": json.loads(meta["param_groups"])})
    return int(meta["step"])
