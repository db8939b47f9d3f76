"""Frame-prefix adapters: a LoRA (peft) on a frozen embedded model, switched on only when the model is given more
than its first frame.

An adapted model is the base model bit for bit whenever it is given its first frame alone (K = 1, image-to-video):
the gate turns every LoRA layer off for such a call, so the base's solve rates, traces and hooks are untouched, and
on for a call given K > 1 leading frames (`DiTCond.prefix`), where the adapter adds what continuing a prefix needs.
The gate is a forward pre-hook on the whole net: it reads the call's conditioning, so every caller (the sampler, the
trainer, a probe's hooks on `blocks.i`, which LoRA leaves where they are) gets the right model without knowing.

Its weights file is one state dict (the base's weights under peft's `base_layer` names and the adapter's `lora_A` /
`lora_B`), its architecture, and the training config whose `adapter` entry (`AdapterConfig`) says how to rebuild
it: `build_net(arch, info)`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .dit import DiTConfig, VideoDiT

# Every linear map of every block and the patch embedding (the only layer that sees which frames are known).
DEFAULT_TARGETS = r"(patch_embedding|blocks\.\d+\.(self_attn|cross_attn)\.(q|k|v|o)|blocks\.\d+\.ffn\.(0|2))"


class AdapterConfig(BaseModel):
    """A training config's `adapter`: train a LoRA of this rank on the frozen `init` weights, switched on only for
    batches given K > 1 leading frames (`gate: "prefix"`, the one gate there is)."""

    model_config = ConfigDict(extra="forbid")

    rank: int = 16
    alpha: float = 16.0
    targets: str = Field(default=DEFAULT_TARGETS, description="a regular expression over module names (peft's "
                                                             "target_modules)")
    gate: str = "prefix"

    @field_validator("rank")
    @classmethod
    def _rank(cls, v):
        if v < 1:
            raise ValueError(f"adapter.rank must be >= 1, got {v}")
        return v

    @field_validator("alpha")
    @classmethod
    def _alpha(cls, v):
        import math

        if not math.isfinite(v) or v <= 0:
            raise ValueError(f"adapter.alpha must be a finite number > 0, got {v}")
        return v

    @field_validator("targets")
    @classmethod
    def _targets(cls, v):
        import re

        try:
            re.compile(v)
        except re.error as e:
            raise ValueError(f"adapter.targets {v!r} is not a regular expression: {e}") from None
        return v

    @field_validator("gate")
    @classmethod
    def _gate(cls, v):
        if v != "prefix":
            raise ValueError(f"adapter.gate {v!r}: the one gate is 'prefix' (on when given K > 1 leading frames)")
        return v


def _tuner_layers(net):
    from peft.tuners.tuners_utils import BaseTunerLayer

    return [m for m in net.modules() if isinstance(m, BaseTunerLayer)]


def _switch(layers: list, params: list, on: bool, trainable: bool) -> None:
    """Turn the adapter `layers` on or off (peft's `enable_adapters`, only where that changes them: it also sets their
    parameters trainable when on, frozen when off), then give `params` the trainability asked for."""
    if layers and layers[0].disable_adapters == on:
        for layer in layers:
            layer.enable_adapters(on)
        for p in params:
            p.requires_grad_(trainable)


def add_adapter(net: VideoDiT, cfg: AdapterConfig | dict, trainable: bool = False) -> VideoDiT:
    """Inject the LoRA layers of `cfg` into `net` in place (its base weights frozen) and attach the prefix gate; the
    adapter starts as zero (peft's init), so a fresh one changes nothing. `trainable`: its parameters train."""
    from peft import LoraConfig, inject_adapter_in_model

    cfg = AdapterConfig.model_validate(cfg)
    try:
        inject_adapter_in_model(LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, target_modules=cfg.targets,
                                           lora_dropout=0.0, bias="none"), net)
    except ValueError as e:  # peft: no module matched
        raise ValueError(f"adapter.targets {cfg.targets!r} matches no layer of the model ({e})") from None
    layers = _tuner_layers(net)  # found once: the gate runs on every forward
    if not layers:
        raise ValueError(f"adapter.targets {cfg.targets!r} matches no layer of the model")
    params = []
    for name, p in net.named_parameters():
        if ".lora_" in name:
            params.append(p)
        else:
            p.requires_grad_(False)

    def gate(module, args, kwargs):
        cond = args[2] if len(args) > 2 else kwargs["cond"]
        _switch(layers, params, cond.prefix is not None, trainable)

    net.register_forward_pre_hook(gate, with_kwargs=True)
    _switch(layers, params, False, trainable)
    for p in params:  # whatever peft left them at
        p.requires_grad_(trainable)
    return net


def adapter_of(info: dict) -> dict | None:
    """The `adapter` entry of a weights file's training config, or None (a plain model)."""
    return (info.get("train_config") or {}).get("adapter")


def build_net(arch: dict, info: dict | None = None) -> VideoDiT:
    """The VideoDiT a weights file describes: its architecture, with the adapter its training config names (before
    its state dict is loaded, whose keys then match)."""
    net = VideoDiT(DiTConfig.from_dict(arch))
    spec = adapter_of(info or {})
    return add_adapter(net, spec) if spec else net
