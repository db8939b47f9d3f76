"""Sampling presets and the model's own defaults on tiny offline Wan pipelines (real diffusers classes, random
weights): `--preset vbvr` runs what it claims (read back from the trace), `pipeline` reads the model, explicit
options win, --height/--width, per-expert and per-branch energy, refusals with no hooks attached."""

import json

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from typer.testing import CliRunner  # noqa: E402

from steplens.backends import trace_pipeline  # noqa: E402
from steplens.backends.wan import WanPipelineModel  # noqa: E402
from steplens.backends.wan.tiny import tiny_wan21_i2v, tiny_wan22_i2v  # noqa: E402
from steplens.cli import app  # noqa: E402
from steplens.backends.wan.presets import VBVR, WAN_NEGATIVE_PROMPT  # noqa: E402
from steplens.presets import resolve  # noqa: E402
from steplens.tasks import get_task  # noqa: E402

pytestmark = pytest.mark.wan
torch.set_num_threads(1)
MAZE = get_task("maze")


def maze(seed=0, n=3, frames=2):
    return MAZE.sample(seed, n, frames)


def quiet(pipe):
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_vbvr_preset_runs_what_it_claims():
    """Euler, 50 steps, shift 5, CFG 5, expert switch at t = 875, the Wan negative prompt: read back from the run."""
    m = WanPipelineModel(quiet(tiny_wan22_i2v(seed=0, scheduler="unipc", shift=3.0)))
    sp = resolve(m, "vbvr")
    assert (sp.steps, sp.shift, sp.guidance) == (50, 5.0, 5.0)
    assert sp.extra["boundary"] == 0.875 and sp.extra["negative_prompt"] == WAN_NEGATIVE_PROMPT
    assert set(sp.sources.values()) == {"preset vbvr"}
    with m.applied(sp):  # the scheduler a trace attached around generate sees
        assert type(m.pipe.scheduler).__name__ == "FlowMatchEulerDiscreteScheduler"
        with trace_pipeline(m.pipe, branches=True) as tr:
            m.generate([maze()], [1], sampling=sp)
    steps = tr.steps
    assert len(steps) == 50
    from diffusers import FlowMatchEulerDiscreteScheduler

    ref = FlowMatchEulerDiscreteScheduler(shift=5.0)
    ref.set_timesteps(50)
    assert np.allclose([s.sigma for s in steps], ref.sigmas[:-1].numpy(), atol=1e-7)
    assert steps[0].sigma == 1.0
    # the expert switch: the high-noise expert exactly while t >= 875
    assert [s.expert for s in steps] == ["transformer" if s.t >= 875 else "transformer_2" for s in steps]
    first_low = next(i for i, s in enumerate(steps) if s.expert == "transformer_2")
    assert 0 < first_low < 50 and steps[first_low - 1].t >= 875 > steps[first_low].t
    # CFG 5: the guided velocity is uncond + 5 (cond - uncond), both branches run at every step
    for s in (steps[0], steps[first_low], steps[-1]):
        cond, uncond = s.branches
        assert s.calls == 2 and torch.allclose(s.v, uncond + 5.0 * (cond - uncond), atol=1e-5)
    # the negative prompt is the uncond branch's: another negative prompt changes the output
    out = m.generate([maze()], [1], sampling=resolve(m, "vbvr", steps=3, shift=5.0, guidance=5.0))
    assert not torch.equal(out, m.generate([maze()], [1], sampling=resolve(m, "vbvr", steps=3, shift=5.0, guidance=5.0,
                                                                           negative_prompt="")))


def test_pipeline_preset_reads_the_model_and_options_win():
    pipe = quiet(tiny_wan22_i2v(seed=0, scheduler="unipc", shift=4.0))
    pipe.register_to_config(boundary_ratio=0.9)
    m = WanPipelineModel(pipe)
    sp = resolve(m, None)
    assert (sp.steps, sp.shift, sp.guidance) == (50, 4.0, 5.0)  # WanImageToVideoPipeline's __call__, its scheduler
    assert sp.extra["scheduler"] == "UniPCMultistepScheduler" and sp.extra["boundary"] == 0.9
    assert type(m.pipe.scheduler).__name__ == "UniPCMultistepScheduler"  # untouched
    sp = resolve(m, "vbvr", steps=3, guidance=2.0)
    assert (sp.steps, sp.shift, sp.guidance) == (3, 5.0, 2.0)
    assert sp.sources["steps"] == sp.sources["guidance"] == "option" and sp.sources["shift"] == "preset vbvr"
    with m.applied(sp):
        assert m.pipe.config.boundary_ratio == VBVR["boundary"]
    # the Python defaults are the model's own too: generate() without steps/guidance = 50 steps, CFG 5
    one = WanPipelineModel(quiet(tiny_wan21_i2v(seed=0)))
    with trace_pipeline(one.pipe) as tr:
        one.generate([maze()], [0])
    assert len(tr.steps) == 50 and all(s.calls == 2 for s in tr.steps)


def test_height_width_and_native_decode():
    m = WanPipelineModel(quiet(tiny_wan22_i2v(seed=0)))
    s = maze(n=3)  # 7 x 7 pixels
    lat = m.generate([s], [0], sampling=resolve(m, None, steps=2, guidance=1.0, height=48, width=64))
    assert lat.shape[-2:] == (48 // 8, 64 // 8)
    px = m.decode(lat)
    assert px.shape[-2:] == s.first_frame.shape[:2] and px.abs().max() <= 1.0
    with pytest.raises(ValueError, match="--height 40: must be a positive multiple of 16"):
        m.generate([s], [0], sampling=resolve(m, None, steps=2, guidance=1.0, height=40, width=64))
    # size from the first frame (vbvr): a sample written x4 is called at 28 px rounded up to 32
    s4 = maze(n=3)
    s4.scale = 4
    m2 = WanPipelineModel(quiet(tiny_wan22_i2v(seed=0)))
    with m2.applied(resolve(m2, "vbvr")):  # size="first-frame"
        assert m2.call_size([s4]) == (32, 32)


def test_energy_per_expert_and_branch(tmp_path):
    from steplens.probes import get_probe
    from steplens.probes.base import ProbeSettings

    m = WanPipelineModel(quiet(tiny_wan22_i2v(seed=0)))
    s = ProbeSettings(count=1, steps=4, size=3, frames=2, batch=1, guidance=3.0)
    res = get_probe("energy").run(m, tmp_path, s, progress=False, steps=[0, 1, 2, 3])
    h = res["headline"]
    assert h["branches"] == ["cond", "uncond"] and h["branch"] == "cond"
    assert set(h["experts"].values()) == {"transformer", "transformer_2"}
    cols = set(res["table"][0])
    assert {"ratio cond transformer", "ratio cond transformer_2", "ratio uncond transformer",
            "ratio uncond transformer_2"} <= cols
    assert set(h["best_block_by"]) == {c[len("ratio "):] for c in cols if c.startswith("ratio ")}
    assert (tmp_path / "energy_steps.png").exists()
    # the per-expert columns are different numbers (two networks), and cond averages its experts' steps
    r = res["table"][0]
    assert r["ratio cond transformer"] != r["ratio cond transformer_2"]
    n_high = sum(e == "transformer" for e in h["experts"].values())
    mix = (n_high * r["ratio cond transformer"] + (4 - n_high) * r["ratio cond transformer_2"]) / 4
    assert r["task_background_ratio"] == pytest.approx(mix, rel=1e-6)


def test_alpha_zero_is_the_plain_batched_run():
    """α = 0 leaves the N members exactly the plain N-seed batch; member 0 against a batch of one differs only by
    the rounding of batched matmuls (README: 'α = 0')."""
    from steplens.methods.ensemble import EnsembleConfig, generate_ensemble, member_seeds

    m = WanPipelineModel(quiet(tiny_wan22_i2v(seed=0)))
    s = maze(frames=3)
    lat = generate_ensemble(m, [s], [7], EnsembleConfig(n_seeds=3, alpha=0.0, steps=[0, 1]), sampling=resolve(m, steps=4, shift=3.0, guidance=5.0))
    seeds = member_seeds([7], 3)
    assert torch.equal(lat[0], m.generate([s] * 3, seeds, sampling=resolve(m, steps=4, shift=3.0, guidance=5.0)))
    single = m.generate([s], seeds[:1], sampling=resolve(m, steps=4, shift=3.0, guidance=5.0))
    assert (lat[0, 0] - single[0]).abs().max() < 1e-4


def test_trace_refuses_without_hooks():
    from diffusers import DPMSolverMultistepScheduler, EulerDiscreteScheduler, WanImageToVideoPipeline, WanPipeline

    p22 = tiny_wan22_i2v(seed=0)
    parts = dict(p22.components, boundary_ratio=p22.config.boundary_ratio)
    t2v = WanPipeline(tokenizer=None, text_encoder=None, vae=p22.vae, scheduler=p22.scheduler,
                      transformer=p22.transformer)
    with pytest.raises(TypeError, match="does not trace the pipeline class WanPipeline; supported: "
                                        ".*WanImageToVideoPipeline"):
        trace_pipeline(t2v)
    dpm = WanImageToVideoPipeline(**{**parts, "scheduler": DPMSolverMultistepScheduler()})
    with pytest.raises(TypeError, match="scheduler DPMSolverMultistepScheduler"):
        trace_pipeline(dpm)
    eps = WanImageToVideoPipeline(**{**parts, "scheduler": EulerDiscreteScheduler()})
    with pytest.raises(TypeError, match="scheduler EulerDiscreteScheduler"):
        trace_pipeline(eps)
    with pytest.raises(TypeError, match="scheduler EulerDiscreteScheduler"):
        WanPipelineModel(eps).generate([maze()], [0], sampling=resolve(WanPipelineModel(eps), steps=1))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("presets")
    p = tiny_wan22_i2v(seed=0, scheduler="unipc")
    p.save_pretrained(d / "wan22")
    tiny_wan21_i2v(seed=0).save_pretrained(d / "wan21")
    return d


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_presets_and_bad_input(folder, tmp_path):
    wan = f"wan:{folder / 'wan22'}"
    data = tmp_path / "data"
    r = cli("tasks", "generate", "maze", "--count", 1, "--size", 3, "--out", data)
    assert r.exit_code == 0, r.output
    r = cli("run", "--model", wan, "--data", data, "--out", tmp_path / "o", "--preset", "vbvr", "--steps", 2,
            "--frames", 2)
    assert r.exit_code == 0, r.output
    config = json.loads((tmp_path / "o" / "run_config.json").read_text())
    got = config.get("config", config)
    assert got["steps"] == 2 and got["shift"] == 5.0 and got["guidance"] == 5.0
    assert got["sampling"]["preset"] == "vbvr" and got["sampling"]["sources"]["steps"] == "option"
    assert got["sampling"]["scheduler"] == "euler" and got["sampling"]["boundary"] == 0.875
    for args, message in [
        (("--model", wan, "--preset", "fast"), "--preset 'fast' does not exist; presets: pipeline"),
        (("--model", "tiny-maze", "--preset", "vbvr"), "--preset vbvr is the study's sampling of VBVR-Wan2.2"),
        (("--model", "tiny-maze", "--height", 32, "--width", 32), "--height, --width apply to diffusers:PATH pipelines"),
        (("--model", wan, "--height", 32), "--height and --width go together"),
        (("--model", wan, "--height", 40, "--width", 32), "--height 40: must be a positive multiple of 16"),
        (("--model", f"wan:{folder / 'wan21'}", "--lora-2", tmp_path / "none.safetensors"), "LoRA file not found"),
    ]:
        r = cli("eval", "--count", 1, "--size", 3, "--frames", 2, "--steps", 1, *args)
        assert r.exit_code == 2 and message in " ".join(r.output.split()), (args, r.output)


def test_a_broken_model_index_is_named(tmp_path):
    from steplens.models.load import load_model

    (tmp_path / "model_index.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"model_index.json is not a readable model_index.json"):
        load_model(f"wan:{tmp_path}")


def test_energy_headline_and_claim_per_expert_never_pooled(tmp_path):
    """Issue 22, finding 7: on a two-expert Wan2.2 the headline (best block, best ratio) and the claim are each
    expert's own, not a step-weighted mean of two networks."""
    from steplens.probes import get_probe
    from steplens.probes.base import ProbeSettings

    m = WanPipelineModel(quiet(tiny_wan22_i2v(seed=0)))
    s = ProbeSettings(count=1, steps=4, size=3, frames=2, batch=1, guidance=1.0)
    p = get_probe("energy")
    res = p.run(m, tmp_path / "a", s, progress=False, steps=[0, 1, 2, 3])
    h, table = res["headline"], res["table"]
    assert set(h["by_expert"]) == {"transformer", "transformer_2"}
    for ex, v in h["by_expert"].items():
        top = max(table, key=lambda r: r[f"ratio cond {ex}"])
        assert (v["best_block"], v["best_ratio"]) == (top["block"], top[f"ratio cond {ex}"])
    assert h["best_block"] is None and h["best_ratio"] is None  # no pooled headline
    text = p.headline_text(h, table)
    assert "transformer:" in text and "transformer_2:" in text
    _, evidence = p.claims[0].judge(h, table)
    assert "transformer:" in evidence and "transformer_2:" in evidence
    cell = p.claims[0].cell(h, table)  # the verdict cell (study.md, report.html) shows each expert's number
    for ex, v in h["by_expert"].items():
        assert f"{ex}: highest task/background energy in {v['best_block']}" in cell, cell
        assert f"({v['best_ratio']:.3f})" in cell, cell
    # the same run again into a fresh folder: every file byte for byte, pca.png included (issue 31, item 3)
    from steplens.io.reproduce import differing_files

    torch.manual_seed(7)
    p.run(m, tmp_path / "b", s, progress=False, steps=[0, 1, 2, 3])
    assert (tmp_path / "a" / "pca.png").is_file() and differing_files(tmp_path / "a", tmp_path / "b") == []


def test_energy_on_a_frame_off_the_pipelines_multiple(tmp_path):
    """Issue 22, finding 5: `probe energy` ran into a traceback where the call size is not the native frame's
    integer upscale (size from the first frame, rounded up to the pipeline's multiple: A14B at 154 px); its task
    mask now follows the call's token grid."""
    from steplens.probes import get_probe
    from steplens.probes.base import ProbeSettings

    m = WanPipelineModel(quiet(tiny_wan22_i2v(seed=0)))
    # a 7 px maze called at 64 px: 4 x 4 tokens, not 7 x 7
    s = ProbeSettings(count=1, steps=2, size=3, frames=2, batch=1, guidance=1.0,
                      sampling=resolve(m, steps=2, guidance=1.0, height=64, width=64))
    res = get_probe("energy").run(m, tmp_path, s, progress=False, steps=[0, 1])
    assert set(res["headline"]["by_expert"]) == {"transformer", "transformer_2"}
    assert all(np.isfinite(r["task_background_ratio"]) for r in res["table"])


def test_height_width_off_the_pipelines_multiple_are_refused_before_it_loads(folder, monkeypatch):
    """--height/--width that are no positive multiple of the pipeline's (VAE x patch, read from the folder's
    configs) are refused naming the multiple, before the pipeline loads (minutes at A14B)."""
    import steplens.models.load as model_load

    loads = []
    monkeypatch.setattr(model_load, "load_model", lambda *a, **kw: loads.append(a))
    wan = f"wan:{folder / 'wan22'}"
    for h, w, message in ((33, 32, "--height 33: must be a positive multiple of 16 for this pipeline (VAE 8 x patch 2)"),
                          (32, 30, "--width 30: must be a positive multiple of 16"),
                          (0, 32, "--height 0: must be >= 1"), (-32, 32, "--height -32: must be >= 1")):
        r = cli("eval", "--count", 1, "--size", 3, "--frames", 2, "--steps", 1, "--model", wan, "--height", h,
                "--width", w)
        assert r.exit_code == 2 and message in " ".join(r.output.split()), (h, w, r.output)
    assert loads == []


def test_vbvr_pro_presets_resolve_to_their_authors_settings_and_say_what_is_unconfirmed():
    """Issue 34 item 6: each VBVR-Pro release steplens runs is a --preset of the Wan family, resolving to the values of
    steplens.backends.wan.vbvr_pro (its authors' example.py); the RL releases (their own pipeline.py) are not."""
    from steplens.backends.wan.presets import PRESETS
    from steplens.backends.wan.vbvr_pro import PRESETS as PRO

    runnable = {n for n, p in PRO.items() if p["format"] in ("diffusers", "diffsynth-lora")}
    assert runnable and runnable <= set(PRESETS) and not (set(PRO) - runnable) & set(PRESETS)
    m = WanPipelineModel(quiet(tiny_wan22_i2v(seed=0, scheduler="unipc", shift=3.0)))
    lora = resolve(m, "vbvr-pro-wan2.2-i2v-a14b-diffsynth")
    pro = PRO["vbvr-pro-wan2.2-i2v-a14b-diffsynth"]
    assert (lora.steps, lora.guidance, lora.shift, lora.scheduler, lora.boundary, lora.size) == (
        pro["steps"], pro["guidance"], pro["shift"], "euler", pro["boundary"], tuple(pro["size"]))
    assert lora.negative_prompt == pro["negative_prompt"] and lora.sources["boundary"].endswith(
        "vbvr-pro-wan2.2-i2v-a14b-diffsynth")
    merged = resolve(m, "vbvr-pro-wan2.2-i2v-a14b")  # scheduler, shift and switch: the checkpoint's own
    own = resolve(m)
    assert (merged.steps, merged.guidance, merged.size) == (50, 5.0, (480, 832))
    assert (merged.scheduler, merged.shift, merged.boundary) == (own.scheduler, own.shift, own.boundary)
    assert "unconfirmed: " in PRESETS["vbvr-pro-wan2.2-i2v-a14b"].description
    assert "--lora-2 low_noise_lora.safetensors" in PRESETS["vbvr-pro-wan2.2-i2v-a14b-diffsynth"].description
    with pytest.raises(ValueError, match="vbvr-pro-wan2.2-i2v-a14b"):  # the refusal lists them
        resolve(m, "vbvr-pro-nope")
