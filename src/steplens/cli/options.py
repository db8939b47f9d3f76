"""The option bundles, declared once: every command that runs a model takes the model and sampling bundles.

    @app.command()
    @bundles
    def eval(mo: ModelOptions, so: SamplingOptions, sa: SampleOptions, count: int = typer.Option(...)):
        model, sampling = load(mo, so)

`bundles` replaces a parameter annotated with a bundle class (a frozen dataclass with a PANEL) by that bundle's
options (in its place, so that `--help` lists them in the same order everywhere, in the bundle's own panel) and hands
the command one checked bundle object. A command that takes only some of a bundle's options, or other defaults,
annotates `part(SampleOptions, "data", "count", data=...)`: the same names and help text, its own defaults. Each
field's typer option lives in the field's metadata; a bundle checks everything that can be checked before a model
loads (`check()`: sampler numbers, device, dtype and offload names, preset, the height/width pair, LoRA files), and
`load` turns the model and sampling bundles into (model, steplens.presets.Sampling). The sample and score bundles are
in steplens.cli.inputs, the ensemble, plan and per-command ones in steplens.cli.run_options.
"""

from __future__ import annotations

import copy
import functools
import inspect
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Annotated, ClassVar, Optional, get_args, get_origin, get_type_hints

import typer


def _opt(default, *decls, help: str, **kw):
    """A bundle's field: its default, and its typer option (declarations, help, bounds such as min=1)."""
    return field(default=default, metadata={"option": typer.Option(default, *decls, help=help, **kw)})


@dataclass(frozen=True)
class ModelOptions:
    """Which model, and how it is held: --model, --device, --dtype, --offload, --lora, --lora-2,
    --allow-unmatched-lora."""

    PANEL: ClassVar[str] = "Model"  # the --help panel its options are listed in

    model: str = _opt("tiny-maze", "--model", "-m", help="tiny-maze (shipped), a .safetensors file, or "
                                                          "diffusers:PATH (a diffusers image-to-video folder of a "
                                                          "family steplens has an adapter for: steplens.backends)")
    device: str = _opt("cpu", "--device", help="torch device")
    dtype: str = _opt("float32", "--dtype", help="float32 | bfloat16 | float16 (diffusers:PATH pipelines; the VAE "
                                                 "and image encoder stay float32; the embedded model runs in "
                                                 "float32)")
    offload: str = _opt("none", "--offload", help="none | model | sequential: CPU offload of a diffusers:PATH "
                                                  "pipeline onto --device (needs accelerate and an accelerator)")
    lora: Optional[str] = _opt(None, "--lora", help="PATH[:SCALE]: a LoRA for a diffusers:PATH model's first (or "
                                                    "only) transformer (DiffSynth, the family's original / ComfyUI "
                                                    "format incl. the Lightning / LightX2V 4-step LoRAs, or diffusers "
                                                    "keys)")
    lora_2: Optional[str] = _opt(None, "--lora-2", help="PATH[:SCALE]: a LoRA for a two-expert model's second "
                                                        "expert (transformer_2)")
    allow_unmatched_lora: bool = _opt(False, "--allow-unmatched-lora", help="apply a LoRA some of whose layers "
                                                                            "match no layer of its transformer (by "
                                                                            "default refused, naming them)")

    def check(self) -> "ModelOptions":
        """Everything that can be refused before the model loads: the device, the dtype and offload names, the
        LoRA specs (PATH[:SCALE], the file present)."""
        from ..backends.checks import DTYPES, OFFLOADS  # the backends' vocabulary (torch only, no diffusers)
        from ..backends.load import is_pipeline_spec
        from ..io import checks

        checks.device(self.device)
        if self.dtype not in DTYPES:
            raise ValueError(f"--dtype: unknown dtype {self.dtype!r}; allowed: {', '.join(DTYPES)}")
        if self.offload not in OFFLOADS:
            raise ValueError(f"--offload {self.offload}: unknown offload {self.offload!r}; allowed: "
                             f"{', '.join(OFFLOADS)}")
        for option, spec in (("--lora", self.lora), ("--lora-2", self.lora_2)):
            if spec is not None:
                lora_spec(spec, option)
                if not is_pipeline_spec(self.model):
                    raise ValueError(f"{option} {spec!r}: LoRAs apply to diffusers:PATH pipelines (diffusers "
                                     f"transformers), not to the embedded model {self.model!r}")
        return self


@dataclass(frozen=True)
class SamplingOptions:
    """How the model samples: --preset, --steps, --shift, --sigmas, --guidance, --height/--width,
    --negative-prompt."""

    PANEL: ClassVar[str] = "Sampling"  # the --help panel its options are listed in

    preset: Optional[str] = _opt(None, "--preset", help="pipeline (default: the model's own settings) | a preset "
                                                        "its family declares (steplens.backends: vbvr, the study's "
                                                        "sampling, and distilled, 4 steps at a fixed sigma list, on "
                                                        "the study's family); explicit options override it")
    steps: Optional[int] = _opt(None, "--steps", help="sampling steps (>= 1; default: the preset's: the model's own, "
                                                      "20 on the embedded model, the pipeline's own on "
                                                      "diffusers:PATH)")
    shift: Optional[float] = _opt(None, "--shift", help="sigma shift of the flow schedule (default: the preset's; the "
                                                        "model's own)")
    sigmas: Optional[str] = _opt(None, "--sigmas", help="an explicit sigma list, one per step, e.g. "
                                                        "1,0.9375,0.8333,0.625 (strictly decreasing, each in (0, 1]; "
                                                        "the final 0 implied or given): overrides --steps and --shift "
                                                        "(refused with them where they disagree); Euler at each sigma")
    guidance: Optional[float] = _opt(None, "--guidance", help="classifier-free guidance scale, 1 = off (default: the "
                                                              "preset's; the model's own)")
    height: Optional[int] = _opt(None, "--height", help="diffusers:PATH: the video height in pixels (a multiple of the "
                                                        "pipeline's; default: the sample's frame upscaled, or the "
                                                        "first frame's size)")
    width: Optional[int] = _opt(None, "--width", help="diffusers:PATH: the video width in pixels (with "
                                                      "--height)")
    negative_prompt: Optional[str] = _opt(None, "--negative-prompt", help="diffusers:PATH: CFG's negative prompt "
                                                                          "(default: "
                                                                          "the preset's)")

    def check(self) -> "SamplingOptions":
        """Everything that can be refused before the model loads: the sampler's numbers, the σ list (and its
        agreement with --steps / --shift), the preset's name, the height/width pair."""
        from ..io import checks
        from ..presets import check_sigma_options, check_size_pair

        checks.sampling(self.steps, self.shift, self.guidance)
        check_sigma_options(self.sigmas, self.steps, self.shift)  # the preset: against the model's (`load`)
        check_size_pair(self.height, self.width)
        return self


@dataclass(frozen=True)
class EngineOptions:
    """Where an experiment's jobs run (probe, compare, study): --engine, --workers."""

    PANEL: ClassVar[str] = "Engine"  # the --help panel its options are listed in

    engine: str = _opt("torchrun", "--engine", help="torchrun: this process, or its share of the jobs when launched "
                                                    "under torchrun --nproc_per_node N / accelerate launch (one "
                                                    "model per process, on its LOCAL_RANK GPU; --out on a "
                                                    "filesystem every node shares) | ray: a Ray actor pool (one "
                                                    "model per actor, one actor per GPU with --device cuda; "
                                                    "RAY_ADDRESS or a local cluster; pip install 'steplens[ray]'). "
                                                    "A job is one --batch of samples with all its conditions")
    workers: Optional[int] = _opt(None, "--workers", help="ray: the actors (default: the cluster's GPUs with "
                                                          "--device cuda, else its CPUs); torchrun: the processes "
                                                          "the launch must have (default: as launched)")

    def check(self) -> "EngineOptions":
        """The engine's name, the worker count (against the launcher's), Ray installed: before any model loads."""
        from ..experiments.dist import rank_world
        from ..experiments.engine import ENGINES, require_ray

        if self.engine not in ENGINES:
            raise ValueError(f"--engine {self.engine}: unknown engine {self.engine!r}; allowed: {', '.join(ENGINES)}")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {self.workers}")
        if self.engine == "ray":
            require_ray()
        elif self.workers is not None and self.workers != rank_world()[1]:
            raise ValueError(f"--workers {self.workers} with --engine torchrun: this launch has {rank_world()[1]} "
                             f"process(es) (WORLD_SIZE); start it with torchrun --nproc_per_node {self.workers} "
                             f"(or accelerate launch --num_processes {self.workers}), or use --engine ray")
        return self


@dataclass(frozen=True)
class SearchOptions:
    """A search along the steps with a verifier (steplens.methods.search): --search, --particles, --beam-step,
    --keep, --resample-steps, --verifier, --links."""

    PANEL: ClassVar[str] = "Search"  # the --help panel its options are listed in

    search: Optional[str] = _opt(None, "--search", help="best-of-n | early-beam | smc | chain | backtrack: search "
                                                        "N particles per sample (backtrack: N generations, each "
                                                        "restarted from the last frame-verified prefix; a model "
                                                        "given K leading frames) with a verifier that never sees the "
                                                        "answer (default: none, one seed)")
    particles: int = _opt(4, "--particles", help="--search: particles (seeds) per sample; backtrack: "
                                                    "generations at most")
    beam_step: Optional[int] = _opt(None, "--beam-step", help="early-beam: the step whose decoded x0_hat the "
                                                              "verifier scores (default: the last of the first 15% "
                                                              "of the steps)")
    keep: int = _opt(1, "--keep", help="early-beam: beams kept at the beam step (<= the particles)")
    resample_steps: Optional[str] = _opt(None, "--resample-steps", help="smc: the steps where particles are "
                                                                        "resampled (compare's default: the beam step, "
                                                                        "1/4 and 1/2 of the way); early-beam: later "
                                                                        "steps where the beams branch again (e.g. "
                                                                        "6,10)")
    verifier: str = _opt("task", "--verifier", help="the search's verifier (task: each task's own; consensus: "
                                                    "agreement with the other particles; or a plug-in: steplens "
                                                    "verifiers)")
    links: int = _opt(4, "--links", help="--search chain: generations at most (each searched with best-of-n)")

    def config(self):
        """The SearchConfig, or None without --search; refused (naming the option) before any model loads."""
        from ..methods.search import SearchConfig

        given = [o for o, v, d in (("--particles", self.particles, 4), ("--beam-step", self.beam_step, None),
                                   ("--keep", self.keep, 1), ("--resample-steps", self.resample_steps, None),
                                   ("--verifier", self.verifier, "task"), ("--links", self.links, 4)) if v != d]
        from ..io import checks

        checks.bounded("--particles", self.particles, checks.MAX_PARTICLES, "particles per sample")
        checks.bounded("--links", self.links, checks.MAX_PARTICLES, "generations per sample")
        if self.search is None:
            if given:
                raise ValueError(f"{', '.join(given)} without --search: give --search best-of-n | early-beam | smc "
                                 f"| chain | backtrack")
            return None
        steps = []
        if self.resample_steps is not None:
            try:
                steps = [int(x) for x in self.resample_steps.split(",")]
            except ValueError:
                raise ValueError(f"--resample-steps: expected comma-separated integers, got "
                                 f"{self.resample_steps!r}") from None
        from pydantic import ValidationError

        try:
            return SearchConfig(method=self.search, n=self.particles, k=self.beam_step, m=self.keep, steps=steps,
                                verifier=self.verifier, links=self.links)
        except ValidationError as e:
            names = {"method": "--search", "n": "--particles", "k": "--beam-step", "m": "--keep",
                     "steps": "--resample-steps", "verifier": "--verifier", "links": "--links"}
            raise ValueError("; ".join(
                (f"{names.get(str(err['loc'][0]), err['loc'][0])}: " if err["loc"] else "")
                + err["msg"].removeprefix("Value error, ") for err in e.errors())) from None

    def check(self) -> "SearchOptions":
        self.config()
        return self




def worker_model(mo: ModelOptions, so: SamplingOptions):
    """The model as `load` makes it: what each worker of another engine (a Ray actor) loads for itself."""
    return load(mo, so)[0]


@contextmanager
def spread(eo: EngineOptions | None, mo: ModelOptions, so: SamplingOptions, out):
    """The block's experiments on the chosen engine. torchrun: every process of a launch checks first that it shares
    OUT with the others (before any model loads). ray: the actor pool, started here (its models load while this
    process loads its own) and closed after; bind it to this process's model (`engine.bind(model)`)."""
    eo = eo or EngineOptions()
    if eo.engine == "ray":
        from ..experiments.engine import RayEngine, using

        engine = RayEngine(eo.workers, functools.partial(worker_model, mo, so),
                           gpus=1 if str(mo.device).startswith("cuda") else 0).start()
        try:
            with using(engine):
                yield engine
        finally:
            engine.close()
    else:
        from ..experiments.dist import check_shared

        check_shared(out)
        yield None


def lora_spec(spec: str, option: str = "--lora"):
    """'PATH[:SCALE]' -> (path, scale), the file present; refused with the option named."""
    from ..backends.lora import parse_spec

    return parse_spec(spec, option)


class Part:
    """A command's share of a bundle (`part`): the options it takes (the others keep the bundle's defaults), its own
    defaults for some of them (a value, or ... for required), and whether the decorator checks the bundle (a command
    that takes a part of a bundle whose check reads the rest checks it itself)."""

    def __init__(self, names: tuple[str, ...], defaults: dict, checked: bool = True):
        self.names, self.defaults, self.checked = names, defaults, checked


def part(cls, *names: str, checked: bool = True, **defaults):
    """Annotate a command's parameter with a part of bundle `cls`: only the fields `names` (default: all), with
    `defaults` replacing the bundle's for this command (`part(SampleOptions, "data", "count", data=...)`). The
    options keep the bundle's names and help text; only their defaults may differ per command."""
    known = [f.name for f in fields(cls)]
    unknown = sorted(set(names) - set(known)) + sorted(set(defaults) - set(names or known))
    if unknown:
        raise TypeError(f"{cls.__name__} has no option(s) {unknown} for this part")
    return Annotated[cls, Part(tuple(names) or tuple(known), defaults, checked)]


def is_bundle(cls) -> bool:
    """A bundle: a dataclass whose fields carry typer options, with the --help panel they are listed in."""
    return isinstance(cls, type) and is_dataclass(cls) and isinstance(getattr(cls, "PANEL", None), str)


def _bundle_of(hint):
    """(bundle class, Part) of a parameter's annotation, or (None, None)."""
    if get_origin(hint) is Annotated:
        cls, *meta = get_args(hint)
        parts = [m for m in meta if isinstance(m, Part)]
        if is_bundle(cls):
            return cls, parts[0] if parts else Part(tuple(f.name for f in fields(cls)), {})
    if is_bundle(hint):
        return hint, Part(tuple(f.name for f in fields(hint)), {})
    return None, None


def bundle_options(cls, taken: Part | None = None) -> list[inspect.Parameter]:
    """The typer parameters of a bundle (or of a command's part of it): each field's option, listed in the bundle's
    --help panel, with the part's default where it gives one."""
    taken = taken or Part(tuple(f.name for f in fields(cls)), {})
    types, out = get_type_hints(cls), []
    for f in fields(cls):
        if f.name not in taken.names:
            continue
        info = copy.copy(f.metadata["option"])
        info.rich_help_panel = cls.PANEL
        if f.name in taken.defaults:
            info.default = taken.defaults[f.name]
        out.append(inspect.Parameter(f.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=info,
                                     annotation=types[f.name]))
    return out


def bundles(fn):
    """A command taking bundles (parameters annotated with a bundle class, or with `part(...)` of one) -> a typer
    command taking their options, listed in each bundle's --help panel; the command gets each bundle built and checked
    (a refusal exits 2 with the message)."""
    sig, hints, extras = inspect.signature(fn), get_type_hints(fn), get_type_hints(fn, include_extras=True)
    takes: dict[str, tuple[type, Part]] = {}
    params: list[inspect.Parameter] = []
    for p in sig.parameters.values():
        cls, taken = _bundle_of(extras.get(p.name))
        if cls is not None:
            takes[p.name] = (cls, taken)
            params += bundle_options(cls, taken)
        else:
            params.append(p.replace(annotation=hints.get(p.name, p.annotation)))
    names = [p.name for p in params]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise TypeError(f"{fn.__name__}: parameters {clash} clash with a bundle's options")

    @functools.wraps(fn)
    def command(**kw):
        from .app import _errors, _fail

        try:
            from ..experiments.dist import check_same_options

            check_same_options(fn.__name__, kw)  # under a launcher: every process started alike, before any work
            for name, (cls, taken) in takes.items():
                rest = {f.name: taken.defaults.get(f.name, f.default) for f in fields(cls)
                        if f.name not in taken.names}
                kw[name] = cls(**{f: kw.pop(f) for f in taken.names}, **rest)
                if taken.checked:
                    kw[name] = kw[name].check()
        except _errors() as e:
            _fail(e)
        return fn(**kw)

    command.__signature__ = sig.replace(parameters=params)
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.bundled = {name: cls for name, (cls, _) in takes.items()}  # what the layout test counts as one each
    return command


def batch_for(mo: ModelOptions, given: int | None, embedded: int) -> int:
    """--batch: as given; else 1 on a pipeline (wan:/diffusers: a 14B call holds the whole batch, twice with CFG: out
    of memory or an hour with no progress) and `embedded` on the embedded model. Known before the model loads."""
    if given is not None:
        return given
    from ..backends.load import is_pipeline_spec

    return 1 if is_pipeline_spec(mo.model) else embedded


def check_preset_before_loading(mo: ModelOptions, so: SamplingOptions) -> None:
    """--preset against the presets of the model --model names, before it loads: a pipeline folder's adapter (chosen
    from its model_index.json) declares its own, the embedded model none beyond `pipeline`."""
    from ..backends.load import adapter_for_spec, is_pipeline_spec
    from ..backends.registry import backends
    from ..presets import UNIVERSAL, check_preset

    elsewhere = {name: (cls.family, p) for cls in backends().values() for name, p in cls.presets.items()}
    if is_pipeline_spec(mo.model):
        found = adapter_for_spec(str(mo.model))
        if found is None:  # unreadable here (a hub id): the name must exist; resolve checks it once loaded
            check_preset(so.preset, {**UNIVERSAL, **{k: p for k, (_, p) in elsewhere.items()}}, str(mo.model),
                         elsewhere)
            return
        cls, index = found
        check_preset(so.preset, {**UNIVERSAL, **cls.presets}, f"{index} names a {cls.backend} pipeline ({cls.family}), "
                     f"which", elsewhere)
        return
    check_preset(so.preset, UNIVERSAL, f"model {mo.model!r} (embedded)", elsewhere)


def known_config(mo: ModelOptions, so: SamplingOptions | None = None) -> dict:
    """The part of an output folder's configuration known before the model loads: the model's identity from its files
    (steplens.models.load.identity_of) and the sampling numbers given explicitly (those a preset or the model's own
    defaults would fill are left to the check after loading)."""
    from ..models.load import identity_of

    so = so or SamplingOptions()
    given = {} if so.sigmas is not None else {"steps": so.steps, "shift": so.shift, "guidance": so.guidance}
    return {**identity_of(mo.model, mo.dtype, mo.lora, mo.lora_2), **{k: v for k, v in given.items() if v is not None}}


def load(mo: ModelOptions, so: SamplingOptions | None = None):
    """(model, steplens.presets.Sampling): the model loaded and the sampling resolved once (the preset, explicit
    values winning; the model is not changed: the value goes with every call). Both bundles are checked first:
    nothing loads for an option that can be refused without the model."""
    from ..backends.load import is_pipeline_spec
    from ..models.load import load_model
    from ..presets import resolve

    so = so or SamplingOptions()
    mo.check(), so.check()
    check_preset_before_loading(mo, so)
    if is_pipeline_spec(mo.model):
        from ..backends.load import check_call_size

        check_call_size(mo.model, so.height, so.width)
    else:  # the embedded model: what only pipelines take, refused before loading (resolve says the same after)
        given = [o for o, v in (("--height", so.height), ("--width", so.width),
                                ("--negative-prompt", so.negative_prompt)) if v is not None]
        if given:
            raise ValueError(f"{', '.join(given)} apply to diffusers:PATH pipelines; model {mo.model!r} samples at its "
                             f"samples' native size with its prompt conditioning")
    from ..experiments.dist import local_device

    try:
        model = load_model(mo.model, local_device(mo.device), dtype=mo.dtype, offload=mo.offload, lora=mo.lora,
                           lora_2=mo.lora_2, lora_unmatched="allow" if mo.allow_unmatched_lora else "refuse")
    except ImportError as e:  # a backend's package missing: a clear message, as for any bad input
        raise ValueError(str(e)) from e
    return model, resolve(model, so.preset, so.steps, so.shift, so.guidance, so.height, so.width, so.negative_prompt,
                          sigmas=so.sigmas)
