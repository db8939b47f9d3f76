"""Distilled Wan2.2 as users hold it, on the tiny Wan2.2 pipeline (real diffusers classes, random weights): a
Lightning / LightX2V-format LoRA pair (diffusion_model.<module>.lora_down/.lora_up/.alpha, rank 64, one file per
expert) loads into both experts (scale 0 = the base bit for bit, scale 1 = the hand merge W += alpha/rank up@down);
`--preset distilled` runs what it claims (σ, CFG off, the expert switch at step 2: read back from a trace); an
explicit σ list on the pipeline; refusals with why."""

import json
from dataclasses import replace

import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

pytest.importorskip("diffusers")
pytest.importorskip("peft")

from steplens.backends import trace_pipeline  # noqa: E402
from steplens.backends.wan import WanPipelineModel, WanTransformerModel  # noqa: E402
from steplens.backends.wan.lora import apply_loras  # noqa: E402
from steplens.backends.wan.tiny import tiny_inputs, tiny_wan21_i2v, tiny_wan22_i2v  # noqa: E402
from steplens.cli import app  # noqa: E402
from steplens.backends.wan.presets import DISTILLED  # noqa: E402
from steplens.presets import resolve  # noqa: E402
from steplens.tasks import get_task  # noqa: E402

pytestmark = pytest.mark.wan
torch.set_num_threads(1)
RANK, ALPHA = 64, 8.0  # Lightning's rank; an alpha != rank so that alpha / rank (= 1/8) is checked
# the Wan DiT's linear layers as the Lightning / LightX2V files name them -> the diffusers module they merge into
MODULES = {"self_attn.q": "attn1.to_q", "self_attn.k": "attn1.to_k", "self_attn.v": "attn1.to_v",
           "self_attn.o": "attn1.to_out.0", "cross_attn.q": "attn2.to_q", "cross_attn.k": "attn2.to_k",
           "cross_attn.v": "attn2.to_v", "cross_attn.o": "attn2.to_out.0", "ffn.0": "ffn.net.0.proj",
           "ffn.2": "ffn.net.2"}


def quiet(pipe):
    pipe.set_progress_bar_config(disable=True)
    return pipe


def lightning_lora(path, transformer, seed):
    """A Lightning-format file for one expert: every block's q/k/v/o (self and cross attention) and ffn.0/ffn.2,
    lora_down (rank x in), lora_up (out x rank), alpha. Returns (path, {diffusers module: (down, up)})."""
    g = torch.Generator().manual_seed(seed)
    sd, pairs = {}, {}
    for i, block in enumerate(transformer.blocks):
        for name, module in MODULES.items():
            layer = block.get_submodule(module)
            down = torch.randn(RANK, layer.in_features, generator=g) * 0.05
            up = torch.randn(layer.out_features, RANK, generator=g) * 0.05
            key = f"diffusion_model.blocks.{i}.{name}"
            sd.update({f"{key}.lora_down.weight": down, f"{key}.lora_up.weight": up,
                       f"{key}.alpha": torch.tensor(ALPHA)})
            pairs[f"blocks.{i}.{module}"] = (down, up)
    save_file(sd, str(path))
    return path, pairs


def merge(transformer, pairs, scale=1.0):
    with torch.no_grad():
        for module, (down, up) in pairs.items():
            transformer.get_submodule(module).weight += scale * (ALPHA / RANK) * (up @ down)


def latents(pipe):
    quiet(pipe)
    return pipe(**{**tiny_inputs(pipe), "num_inference_steps": 3, "output_type": "latent"}).frames


def test_a_lightning_lora_pair_loads_into_both_experts(tmp_path):
    base = tiny_wan22_i2v(seed=0)
    high, hp = lightning_lora(tmp_path / "high_noise_model.safetensors", base.transformer, 1)
    low, lp = lightning_lora(tmp_path / "low_noise_model.safetensors", base.transformer_2, 2)
    ref_base = latents(base)
    p = tiny_wan22_i2v(seed=0)
    info = apply_loras(p, lora=f"{high}:0", lora_2=f"{low}:0")
    n = len(base.transformer.blocks) * len(MODULES)
    assert info["transformer"][2:] == ("original", n) and info["transformer_2"][2:] == ("original", n)
    assert torch.equal(latents(p), ref_base)  # scale 0: the base, bit for bit
    p = tiny_wan22_i2v(seed=0)
    apply_loras(p, lora=str(high), lora_2=str(low))
    ref = tiny_wan22_i2v(seed=0)
    merge(ref.transformer, hp)
    merge(ref.transformer_2, lp)
    out, want = latents(p), latents(ref)
    assert not torch.allclose(want, ref_base, atol=1e-3)  # the LoRAs change the output
    torch.testing.assert_close(out, want, rtol=0, atol=1e-5)  # scale 1: W += (alpha / rank) up @ down, per expert


def test_distilled_preset_runs_what_it_claims():
    """Euler at exactly σ = shift-5 at t = 1000/750/500/250, CFG off (one call per step), switch at step 2."""
    m = WanPipelineModel(quiet(tiny_wan22_i2v(seed=0, scheduler="unipc", shift=3.0)))
    sp = resolve(m, "distilled")
    want = [1.0, 0.9375, 5 * 0.5 / (1 + 4 * 0.5), 0.625]
    assert DISTILLED["sigmas"] == want and list(sp.sigmas) == want
    assert (sp.steps, sp.shift, sp.guidance) == (4, 5.0, 1.0) and sp.extra["boundary"] == 0.875
    assert set(sp.sources.values()) == {"preset distilled"}
    s = get_task("maze").sample(0, 3, 2)
    with m.applied(sp):  # the scheduler a trace attached around generate sees
        assert type(m.pipe.scheduler).__name__ == "FlowMatchEulerDiscreteScheduler"
        with trace_pipeline(m.pipe, branches=True) as tr:
            out = m.generate([s], [1], sampling=sp)
    steps = tr.steps
    assert [st.sigma for st in steps] == [float(torch.tensor(x)) for x in want]  # float32 of the exact σ
    assert [st.sigma_next for st in steps][-1] == 0.0
    assert [st.t for st in steps] == pytest.approx([1000.0, 937.5, 833.3333, 625.0], abs=1e-3)
    assert [st.expert for st in steps] == ["transformer", "transformer", "transformer_2", "transformer_2"]
    assert all(st.calls == 1 and len(st.branches) == 1 for st in steps)  # CFG off
    # the σ list goes with the value: generate() given it again, with no trace around, runs it
    assert torch.equal(m.generate([s], [1], sampling=sp), out)
    # steplens' own Euler on the pipeline's transformers takes the same σ list
    euler = WanTransformerModel(m)
    seen = []
    euler.generate([s], [1], sampling=sp, callback=seen.append)
    assert [st.sigma for st in seen] == [st.sigma for st in steps]
    # explicit --steps drops the preset's list: the scheduler's own shift-5 grid of that many steps
    from diffusers import FlowMatchEulerDiscreteScheduler

    sp = resolve(m, "distilled", steps=2)
    assert sp.sigmas is None and sp.steps == 2
    with m.applied(sp), trace_pipeline(m.pipe) as tr:
        m.generate([s], [1], sampling=sp)
    ref = FlowMatchEulerDiscreteScheduler(shift=5.0)
    ref.set_timesteps(2)
    assert [st.sigma for st in tr.steps] == ref.sigmas[:-1].tolist()


def test_explicit_sigmas_on_a_pipeline_and_one_expert():
    m = WanPipelineModel(quiet(tiny_wan21_i2v(seed=0, scheduler="unipc")))
    sp = resolve(m, "distilled")  # one expert: no switch, the rest as claimed
    assert "boundary" not in sp.extra and sp.steps == 4 and sp.guidance == 1.0
    s = get_task("maze").sample(0, 3, 2)
    sp = resolve(m, guidance=1.0, sigmas=[1.0, 0.7, 0.2, 0.0])
    with m.applied(sp), trace_pipeline(m.pipe) as tr:
        m.generate([s], [0], sampling=sp)
    assert [st.sigma for st in tr.steps] == [float(torch.tensor(x)) for x in (1.0, 0.7, 0.2)]
    unipc = WanPipelineModel(quiet(tiny_wan22_i2v(seed=0, scheduler="unipc")))
    with pytest.raises(ValueError, match="explicit σ list runs FlowMatch Euler.*UniPCMultistepScheduler"):
        unipc.generate([s], [0], sampling=replace(resolve(unipc, guidance=1.0), sigmas=[1.0, 0.5]))
    sp = resolve(unipc, None, sigmas="1,0.5")  # --sigmas on a UniPC pipeline sets Euler, and says so
    assert sp.extra["scheduler"] == "euler" and sp.sources["scheduler"].startswith("option (--sigmas")


def test_distilled_preset_refused_where_it_does_not_fit():
    from steplens.backends.ltx2 import LTX2PipelineModel
    from steplens.backends.ltx2.tiny import tiny_ltx2_i2v
    from steplens.models.load import load_model

    with pytest.raises(ValueError, match="'distilled' is not a preset of model 'tiny-maze' .*its presets: pipeline"):
        resolve(load_model("tiny-maze"), "distilled")
    ltx = LTX2PipelineModel(tiny_ltx2_i2v(seed=0))
    with pytest.raises(ValueError, match="'distilled' is not a preset of model .* \\(ltx2\\); its presets: pipeline"):
        resolve(ltx, "distilled")
    with pytest.raises(ValueError, match="does not take an explicit σ list"):
        resolve(ltx, None, sigmas="1,0.5")
    with pytest.raises(ValueError, match="explicit σ list .* is not supported for LTX-2"):
        ltx.generate([get_task("maze").sample(0, 3, 2)], [0], sampling=replace(resolve(ltx), sigmas=[1.0, 0.5]))


def test_cli_distilled_with_a_lightning_pair(tmp_path):
    wan = tmp_path / "wan"
    p = tiny_wan22_i2v(seed=0, scheduler="unipc")
    p.save_pretrained(wan)
    high, _ = lightning_lora(tmp_path / "high.safetensors", p.transformer, 1)
    low, _ = lightning_lora(tmp_path / "low.safetensors", p.transformer_2, 2)
    run = CliRunner()
    r = run.invoke(app, ["tasks", "generate", "maze", "--count", "1", "--size", "3", "--frames", "2", "--out",
                         str(tmp_path / "data")])
    assert r.exit_code == 0, r.output
    r = run.invoke(app, ["run", "--model", f"wan:{wan}", "--data", str(tmp_path / "data"), "--out",
                         str(tmp_path / "o"), "--preset", "distilled", "--lora", str(high), "--lora-2", str(low)])
    assert r.exit_code == 0, r.output
    got = json.loads((tmp_path / "o" / "run_config.json").read_text())
    got = got.get("config", got)
    assert got["steps"] == 4 and got["guidance"] == 1.0
    assert got["sampling"]["preset"] == "distilled" and got["sampling"]["sigmas"] == DISTILLED["sigmas"]
    assert got["sampling"]["boundary"] == 0.875 and got["sampling"]["scheduler"] == "euler"
    r = run.invoke(app, ["eval", "--model", f"wan:{wan}", "--count", "1", "--size", "3", "--frames", "2",
                         "--preset", "distilled", "--sigmas", "1,0.5", "--steps", "3"])
    assert r.exit_code == 2 and "--steps 3 and --sigmas 1,0.5 disagree" in " ".join(r.output.split())


def test_a_later_preset_on_the_same_model_does_not_keep_the_distilled_sigmas():
    from diffusers import FlowMatchEulerDiscreteScheduler

    m = WanPipelineModel(quiet(tiny_wan22_i2v(seed=0)))
    resolve(m, "distilled")
    sp = resolve(m, "vbvr", steps=4)  # the study's grid at 4 steps, shift 5: not the distilled list
    assert sp.sigmas is None and "sigmas" not in m.sampling_defaults()
    with m.applied(sp), trace_pipeline(m.pipe) as tr:
        m.generate([get_task("maze").sample(0, 3, 2)], [0], sampling=sp)
    ref = FlowMatchEulerDiscreteScheduler(shift=5.0)
    ref.set_timesteps(4)
    assert [st.sigma for st in tr.steps] == ref.sigmas[:-1].tolist()


def test_cli_distilled_on_an_ltx2_folder_is_refused_before_it_loads(tmp_path, monkeypatch):
    from steplens.backends.ltx2.tiny import tiny_ltx2_i2v
    import steplens.models.load as load_mod

    folder = tmp_path / "ltx"
    tiny_ltx2_i2v(seed=0).save_pretrained(folder)
    loaded = []
    monkeypatch.setattr(load_mod, "load_model", lambda *a, **k: loaded.append(a))  # must not be reached
    r = CliRunner().invoke(app, ["eval", "--model", f"wan:{folder}", "--count", "1", "--size", "3", "--frames", "2",
                                 "--out", str(tmp_path / "o"), "--preset", "distilled"])
    assert r.exit_code == 2 and not loaded, r.output
    assert "--preset distilled" in r.output and "ltx2" in r.output and "model_index.json" in r.output
