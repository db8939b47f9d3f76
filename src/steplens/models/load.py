"""Resolving a --model spec: a shipped name, a weights/checkpoint file, or a diffusers Wan folder."""

from __future__ import annotations

from pathlib import Path

from .adapter import build_net
from .weights import load_weights
from .wrap import EmbeddedModel


def is_pipeline_spec(spec) -> bool:
    """Whether `spec` names a diffusers pipeline folder (steplens.backends.load.is_pipeline_spec)."""
    from ..backends.load import is_pipeline_spec as pipeline_spec

    return pipeline_spec(spec)

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
SHIPPED = {
    "tiny-maze": "tiny-maze.safetensors",  # plain mazes (issue 2's model)
    "tiny-maze-2goal": "tiny-maze-2goal.safetensors",  # tiny-maze fine-tuned to also follow the two-goal prompt
    "tiny-reasoner": "tiny-reasoner.safetensors",  # all seven task families (issue 12; configs/tiny-reasoner*.json)
    "tiny-reasoner-4step": "tiny-reasoner-4step.safetensors",  # tiny-reasoner distilled to 4 steps (configs/distill/)
    "tiny-reasoner-frames": "tiny-reasoner-frames.safetensors",  # tiny-reasoner continuing K given leading frames
    # (issue 35; configs/tiny-reasoner-frames-lora.json): a LoRA on tiny-reasoner, on only when given K > 1 frames,
    # so tiny-reasoner bit for bit at K = 1 (steplens.models.adapter); what backtrack needs on the embedded backend
}


def shipped_path(name: str) -> Path:
    return WEIGHTS_DIR / SHIPPED[name]


def load_model(spec: str, device: str = "cpu", dtype: str | None = "float32", offload: str | None = "none",
               lora=None, lora_2=None, lora_unmatched: str = "refuse"):
    """`tiny-maze` (shipped weights), `PATH.safetensors` (weights or training checkpoint), or `diffusers:PATH` /
    `diffusers:PATH`: a diffusers image-to-video folder or hub id, loaded by the backend of its pipeline class
    (steplens.backends.registry).
    dtype (float32 | bfloat16 | float16) and offload (none | model | sequential) apply to those pipelines; the
    embedded model runs in float32, not offloaded."""
    if is_pipeline_spec(spec):
        from ..backends import load_pipeline_model

        return load_pipeline_model(spec, device=device, dtype=dtype, offload=offload, lora=lora, lora_2=lora_2,
                                   lora_unmatched=lora_unmatched)
    if lora is not None or lora_2 is not None:
        raise ValueError(f"--lora / --lora-2 apply to diffusers:PATH pipelines (diffusers transformers), not to the "
                         f"embedded model {spec!r}")
    if dtype not in (None, "float32"):
        from ..backends.checks import DTYPES

        if dtype not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; allowed: {', '.join(DTYPES)}")
        raise ValueError(f"model {spec!r} runs in float32; --dtype {dtype} applies to diffusers:PATH pipelines")
    if offload not in (None, "none"):
        raise ValueError(f"model {spec!r} is not offloaded (offload 'none'); --offload {offload} applies to diffusers:PATH "
                         f"pipelines (allowed there: none, model, sequential)")
    path, name = _weights_path(spec)
    if path is None:
        raise ValueError(f"unknown model {spec!r}; available: {', '.join(SHIPPED)}, a .safetensors weights "
                         f"or checkpoint file, or diffusers:PATH")
    if spec in SHIPPED:
        checked_shipped_path(spec)
    state, arch, info = load_weights(path)  # a missing or damaged file named
    identity = _embedded_identity(spec, path)
    net = build_net(arch, info)  # with its frame-prefix adapter, where its training config names one
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"weights file {path} does not match its architecture: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    return EmbeddedModel(net, device=device, name=name, info={**info, "identity": identity})


HASHES = "sha256.json"  # beside the shipped weights: each file's sha256 as shipped (update it when shipping new ones)


def check_shipped(path: Path, digest: str) -> None:
    """A shipped weights file whose bytes are not those recorded in weights/sha256.json (a damaged download or
    install, an edited file) is refused naming it: older files carry no checksum of their own, and a damaged float16
    payload still loads, giving wrong numbers silently."""
    import json

    recorded = json.loads((path.parent / HASHES).read_text()).get(path.name)
    if recorded != digest:
        raise ValueError(f"shipped weights {path} are damaged: their sha256 {digest[:16]}... is not the one recorded "
                         f"when they were shipped ({(recorded or 'none recorded')[:16]}..., {path.parent / HASHES}); "
                         f"reinstall steplens (pip install --force-reinstall) or restore the file from the repository")


def checked_shipped_path(name: str) -> Path:
    """A shipped model's weights file, its bytes checked against the recorded hash (training's --init, distillation's
    teacher: every reader of the shipped weights)."""
    from ..io.files import sha256_file

    path = shipped_path(name)
    check_shipped(path, sha256_file(path))
    return path


def _weights_path(spec: str) -> tuple[Path | None, str]:
    """(weights file, model name) of an embedded model's spec; (None, spec) for none."""
    if spec in SHIPPED:
        return shipped_path(spec), spec
    if spec.endswith(".safetensors") or Path(spec).is_file():
        return Path(spec), Path(spec).stem
    return None, spec


def _embedded_identity(spec: str, path: Path) -> dict:
    from ..io.files import sha256_file

    return {"model": spec, "weights_sha256": sha256_file(path), "dtype": "float32"}


def check_spec(spec: str, option: str = "--model") -> str:
    """A model spec that names something loadable, checked without loading it: a shipped name, a weights file that
    exists, or wan:/diffusers: with a folder that exists (or a hub id: no slash-free local path to check)."""
    if is_pipeline_spec(spec):
        folder = spec.partition(":")[2]
        if not folder:
            raise ValueError(f"{option} {spec!r}: give diffusers:PATH, the pipeline's folder")
        if (folder.startswith((".", "/", "~")) or Path(folder).expanduser().exists()) and \
                not Path(folder).expanduser().is_dir():
            raise ValueError(f"{option} {spec!r}: pipeline folder not found: {folder}")
        return spec
    path, _ = _weights_path(spec)
    if path is None:
        raise ValueError(f"{option} {spec!r}: unknown model; available: {', '.join(SHIPPED)}, a .safetensors "
                         f"weights or checkpoint file, or diffusers:PATH")
    if not Path(path).is_file():
        raise ValueError(f"{option} {spec!r}: weights file not found: {path}")
    return spec


def identity_of(spec: str, dtype: str | None = "float32", lora=None, lora_2=None) -> dict:
    """The identity (steplens.contract.identity) the model `spec` will have once loaded with these options, computed
    without loading it (hashes of its weights file, or of its pipeline folder and LoRA files): what an output folder's
    configuration is checked against before minutes of loading. Parts that cannot be known without loading (a
    missing file, a bad spec: the loader names those) are left out."""
    if is_pipeline_spec(spec):
        from ..backends.load import pipeline_identity

        try:
            return pipeline_identity(spec, spec.partition(":")[2], dtype, {"--lora": lora, "--lora-2": lora_2})
        except (ValueError, OSError):
            return {"model": spec}
    path, _ = _weights_path(spec)
    if path is None or not Path(path).is_file():
        return {"model": spec}
    return _embedded_identity(spec, path)
