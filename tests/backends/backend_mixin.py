"""The tests every diffusers backend family passes, written once (as diffusers' PipelineTesterMixin): a family's
test file is `class TestX(BackendTests): family = families.X()` plus the `check_*` hooks that add what only that
family has (each hook runs inside the shared test, on the same runs). Real tiny offline pipelines, no mocks:

- tracing and records change nothing (bit for bit), the trace has the scheduler's steps and σ, x0_hat = x - σ v;
- hooks see step, σ, CFG branch and expert; the cond branch is the positive prompt's; a foreign model is refused;
- identity edits change nothing; an x0 edit at the last step is the output, one before hands the scheduler
  v = (x - x0') / σ;
- generate is the plain pipeline call bit for bit (CFG on and off, a shift for the call only), decode is the
  pipeline's video, callback and hooks in generate see every step;
- trace, compare's methods and the ensemble run; every probe runs; a saved folder loads and runs through the CLI.

Not a test module (pytest collects test_*.py only). The class-scoped `pipe` is the family's tiny pipeline, built once
per test run (family_pipes in tests/conftest.py) and shared with the family's own tests; every test leaves it as it
found it."""

from __future__ import annotations

import json

import pytest
import torch

from families import maze
from steplens.presets import resolve
from steplens.backends import attach, trace_pipeline
from steplens.contract import check_model
from steplens.hooks import Hooks

PROBES = ["noise", "propagation", "energy", "swap", "sweep", "behaviours"]


def same(a, b, atol):
    """Bit for bit where atol is 0, else within atol."""
    if atol:
        torch.testing.assert_close(a, b, rtol=0, atol=atol)
    else:
        assert torch.equal(a, b)


class BackendTests:
    family = None  # a families.Family

    # -- what a family adds: each hook runs at the end of the shared test it is named after, on the same runs -----
    def check_trace(self, pipe, tr, guidance):
        pass

    def check_x0_edit(self, pipe, tr0, tr, w):
        pass

    def check_generate(self, pipe, model, lat, both):
        pass

    def check_callback(self, pipe, model, steps):
        pass

    def check_experiments(self, pipe, model):
        pass

    def check_decode(self, pipe, lat, own):
        pass

    def check_saved(self, pipe, folder, model, tmp_path):
        pass

    def load(self, folder):
        from steplens.backends import load_pipeline_model

        return load_pipeline_model(f"wan:{folder}")

    # -- the shared tests -------------------------------------------------------------------------------------------
    @pytest.fixture(scope="class")
    @classmethod
    def pipe(cls, family_pipes):
        return family_pipes(cls.family)

    @pytest.mark.parametrize("cfg_on", [True, False], ids=["cfg", "no-cfg"])
    def test_trace_and_records_change_nothing(self, pipe, cfg_on):
        F = self.family
        guidance = F.cfg if cfg_on else 1.0
        out = F.plain(pipe, guidance)
        model = F.model(pipe)
        hooks = Hooks(model, F.steps).record(model.block_names + ["latent", "v", "x0"])
        with trace_pipeline(pipe, decode_steps=[-1], hooks=hooks, branches=True) as tr:
            again = F.plain(pipe, guidance)
        assert len(out) == len(again) and all(torch.equal(a, b) for a, b in zip(out, again))  # bit for bit
        F.assert_pristine(pipe)
        assert [st.i for st in tr.steps] == list(range(F.steps))
        assert [st.sigma for st in tr.steps] == pipe.scheduler.sigmas[:-1].tolist() and tr.steps[-1].sigma_next == 0
        x0_shape, block_shape, decoded_shape = F.trace_shapes
        assert tr.steps[-1].x0.shape == x0_shape
        assert torch.equal(F.output(pipe, tr.steps[-1].x0), out[0])  # x0_hat of the last step is the final latent
        f = F.free
        for st in tr.steps:
            same(st.x0[:, :, f], st.x[:, :, f] - torch.tensor(st.sigma) * st.v[:, :, f], F.x0_atol)
            assert torch.equal(hooks.get("latent", st.i), st.x) and torch.equal(hooks.get("x0", st.i), st.x0)
            assert torch.equal(hooks.get("v", st.i), st.v)
        assert {k[2] for k in hooks.records if k[0] == "blocks.1"} == ({"cond", "uncond"} if cfg_on else {"cond"})
        assert hooks.get("blocks.1", 0, "cond", F.expert_at(pipe, 0)).shape == block_shape  # (B, T*h*w tokens, D)
        assert tr.decoded[F.steps - 1].shape == decoded_shape
        self.check_trace(pipe, tr, guidance)

    def test_hooks_see_step_sigma_and_branch(self, pipe):
        F = self.family
        model = F.model(pipe)
        seen = []

        def spy(t, ctx):
            seen.append((ctx.step, ctx.sigma, ctx.branches, ctx.expert, t.shape[0]))
            return t

        F.plain(pipe, F.cfg)  # sets the scheduler's sigmas
        sigmas = pipe.scheduler.sigmas.tolist()
        hooks = Hooks(model, F.steps).edit("blocks.0", spy).record("blocks.0", steps=[0])
        with attach(pipe, hooks):
            F.plain(pipe, F.cfg)
        assert seen == [(k, sigmas[k], b, F.expert_at(pipe, k), 1) for k in range(F.steps) for b in F.cond_first]
        solo = Hooks(model, F.steps).record("blocks.0", steps=[0])
        with attach(pipe, solo):
            F.plain(pipe, 1.0)
        cond, uncond = hooks.get("blocks.0", 0, "cond"), hooks.get("blocks.0", 0, "uncond")
        same(cond, solo.get("blocks.0", 0, "cond"), F.cond_atol)  # the cond branch is the positive prompt's
        assert (uncond - cond).abs().max() > 1e-3
        with pytest.raises(ValueError, match="not on this pipeline"):
            attach(pipe, Hooks(F.model(F.build(seed=1))))
        F.assert_pristine(pipe)

    def test_identity_edits_change_nothing(self, pipe):
        F = self.family
        out = F.plain(pipe, F.cfg)
        model = F.model(pipe)
        hooks = Hooks(model).edit(model.block_names + ["latent", "v", "x0"], fn=lambda t, ctx: t)
        hooks.edit(["blocks.1", "latent", "x0"], fn=lambda t, ctx: t.clone())
        with attach(pipe, hooks):
            again = F.plain(pipe, F.cfg)
        assert len(out) == len(again) and all(torch.equal(a, b) for a, b in zip(out, again))
        F.assert_pristine(pipe)

    def test_x0_edit(self, pipe):
        """At the last step the output is exactly the edited x0_hat; at step 1 the scheduler gets
        v = (x - x0') / σ on the frames it moves, and the next latent is Euler's step toward x0'."""
        F = self.family
        if not F.x0_edit:
            pytest.skip(f"{type(F).__name__}: the x0 edit is not exact on this family; its own tests check it")
        model = F.model(pipe)
        with trace_pipeline(pipe) as tr0:
            F.plain(pipe, F.cfg)
        w = torch.randn(tr0.steps[0].x.shape, generator=torch.Generator().manual_seed(3))
        last = F.steps - 1
        with trace_pipeline(pipe, hooks=Hooks(model).edit("x0", steps=[last], fn=lambda t, ctx: w.clone())) as tr:
            got = F.plain(pipe, F.cfg)
        assert torch.equal(got[0], F.output(pipe, w)) and torch.equal(tr.steps[-1].x0, w)
        assert torch.equal(tr.steps[-1].x, tr0.steps[-1].x)  # the step's x_s is untouched
        with trace_pipeline(pipe, hooks=Hooks(model).edit("x0", steps=[1], fn=lambda t, ctx: w.clone())) as tr:
            F.plain(pipe, F.cfg)
        s1, s2, f = tr.steps[1], tr.steps[2], F.free
        sig, sig_next = pipe.scheduler.sigmas[1], pipe.scheduler.sigmas[2]
        v = (s1.x[:, :, f] - w[:, :, f]) / sig
        assert torch.equal(s1.x, tr0.steps[1].x) and torch.equal(s1.x0, w)
        same(s1.v[:, :, f], v, F.x0_edit_atol)
        same(s2.x[:, :, f], s1.x[:, :, f] + (sig_next - sig) * v, F.x0_edit_atol)
        F.assert_pristine(pipe)
        self.check_x0_edit(pipe, tr0, tr, w)

    def test_generate_is_the_pipeline_call_bit_for_bit(self, pipe):
        F = self.family
        model = F.model(pipe)
        check_model(model)
        s, s2 = maze(4), maze(5)
        lat = model.generate([s], [7], sampling=resolve(model, steps=F.steps, guidance=F.cfg))
        assert lat.shape == F.latent_shape  # a 7x7 maze, 3 frames
        assert torch.equal(F.output(pipe, lat), F.direct(pipe, [s], [7]))
        assert torch.equal(F.output(pipe, model.generate([s], [7], sampling=resolve(model, steps=F.steps, guidance=1.0))),
                           F.direct(pipe, [s], [7], guidance=1.0))
        # different images in one call: row 0 is the single call up to the rounding of batched matmuls
        both = model.generate([s, s2], [7, 8], sampling=resolve(model, steps=F.steps, guidance=F.cfg))
        torch.testing.assert_close(both[0], lat[0], rtol=0, atol=1e-4)
        # a shift replaces the scheduler's for the call only
        original, config, shift = pipe.scheduler, dict(pipe.scheduler.config), getattr(pipe.scheduler, "shift", None)
        shifted = model.generate([s], [7], sampling=resolve(model, steps=F.steps, shift=F.other_shift, guidance=F.cfg))
        assert pipe.scheduler is original and not torch.equal(shifted, lat)
        assert dict(original.config) == config and getattr(original, "shift", None) == shift  # left as it was
        assert torch.equal(F.output(pipe, shifted), F.direct(pipe, [s], [7],
                                                             scheduler=F.shifted(original, F.other_shift)))
        self.check_generate(pipe, model, lat, both)
        F.assert_pristine(pipe)

    def test_decode_is_the_pipeline_video(self, pipe):
        F = self.family
        model = F.model(pipe)
        s = maze(5)
        lat = model.generate([s], [3], sampling=resolve(model, steps=F.steps, guidance=F.cfg))
        own = F.direct(pipe, [s], [3], output_type="pt")  # (B, T, C, H, W) in [0, 1]
        video = model.decode_video(lat)  # (B, C, T, H, W) in [-1, 1]
        assert video.shape == F.video_shape
        assert torch.equal((video * 0.5 + 0.5).clamp(0, 1).permute(0, 2, 1, 3, 4), own)
        px = model.decode(lat)  # one frame per sample frame, k x k pixel blocks averaged: native size
        stride, k = F.pool
        assert px.shape == (1, 3, 3, 7, 7)
        assert torch.equal(px, torch.nn.functional.avg_pool3d(video[:, :, ::stride], (1, k, k)))
        self.check_decode(pipe, lat, own)

    def test_callback_and_hooks_in_generate(self, pipe):
        F = self.family
        model = F.model(pipe)
        samples, seeds = [maze(0), maze(1)], [0, 1]
        plain = model.generate(samples, seeds, sampling=resolve(model, steps=F.steps, guidance=F.cfg))
        steps = []
        hooks = Hooks(model, F.steps).record("blocks.1", reduce="energy").record("x0")
        lat = model.generate(samples, seeds, sampling=resolve(model, steps=F.steps, guidance=F.cfg), callback=steps.append, hooks=hooks)
        assert torch.equal(lat, plain)
        assert [st.i for st in steps] == list(range(F.steps)) and torch.equal(steps[-1].x0, lat)
        assert [st.expert for st in steps] == [F.expert_at(pipe, k) for k in range(F.steps)]
        grid = model.token_grid(lat.shape)
        assert grid == (3, 7, 7)  # one token per maze pixel and frame
        for k, st in enumerate(steps):
            assert torch.equal(hooks.get("x0", k), st.x0)
            for branch in ("cond", "uncond"):
                assert hooks.get("blocks.1", k, branch).reshape(2, *grid).shape == (2, *grid)
        assert model.modules()["transformer"].get_submodule("blocks.1") is F.blocks(pipe)[1]
        assert model.block_names == ["blocks.0", "blocks.1"] and model.experts == F.experts
        self.check_callback(pipe, model, steps)
        F.assert_pristine(pipe)

    def test_experiments_run(self, pipe):
        from steplens.methods.ensemble import EnsembleConfig, ensemble_hooks, generate_ensemble, member_seeds
        from steplens.probes.compare import run_methods
        from steplens.trace import trace

        F = self.family
        model = F.model(pipe)
        tr = trace(model, [maze(3, frames=2)], [3], sampling=resolve(model, steps=2, guidance=F.cfg))[0]
        assert tr.x0.shape == (2, 3, 2, 7, 7) and len(tr.metrics) == 2 and tr.output.shape == (3, 2, 7, 7)
        got = run_methods(model, [maze(0, frames=2), maze(1, frames=2)], [0, 1], ["single", "ensemble", "vote"], 2,
                          resolve(model, steps=2, shift=F.methods_shift, guidance=1.0))
        assert {k: len(v) for k, v in got.items()} == {"single": 2, "ensemble": 2, "vote": 2}
        # the ensemble's averaging acts on the members of one call: the averaged block output is the same in both
        s = [maze(0, frames=2)]
        cfg = EnsembleConfig(n_seeds=2, target="block", blocks=[0], steps=[0, 1])
        hooks = ensemble_hooks(model, cfg, 2).record("blocks.0")  # recorded after the averaging edit
        with hooks:
            model.generate(s * 2, member_seeds([0], 2), sampling=resolve(model, steps=2, guidance=1.0), hooks=hooks)
        for k in range(2):
            rec = hooks.get("blocks.0", k)
            assert torch.equal(rec[0], rec[1])
        lat = generate_ensemble(model, s, [0], EnsembleConfig(n_seeds=2, target="x0", steps=[1]), sampling=resolve(model, steps=2, guidance=1.0))
        same(lat[0, 0], lat[0, 1], F.ensemble_atol)  # x0_hat averaged at the last step
        off = generate_ensemble(model, s, [0], EnsembleConfig(n_seeds=2, target="x0", steps=[1], alpha=0.0),
                                sampling=resolve(model, steps=2, guidance=1.0))
        assert (off[0, 0] - off[0, 1]).abs().max() > F.ensemble_spread
        self.check_experiments(pipe, model)
        F.assert_pristine(pipe)

    @pytest.mark.parametrize("probe", PROBES)
    def test_every_probe_runs(self, pipe, probe, tmp_path):
        from steplens.probes import NAMES, get_probe
        from steplens.probes.base import ProbeSettings

        assert probe in NAMES
        F = self.family
        model = F.model(pipe)
        s = ProbeSettings(count=F.probe_batch, steps=2, size=3, frames=2, batch=F.probe_batch)
        if probe == "swap":  # the task the swap probe generates when none is named
            s = s.model_copy(update={"task": get_probe("swap").default_task()})
        kw = {"sweep": {"frames": (2,), "steps": F.sweep_steps}, "noise": {"mix_strengths": ()}}.get(probe, {})
        res = get_probe(probe).run(model, tmp_path, s, progress=False, **kw)
        assert res["table"] and (tmp_path / "results.json").exists()
        assert json.loads((tmp_path / "results.json").read_text())["table"] == json.loads(json.dumps(res["table"]))
        F.assert_pristine(pipe)

    @pytest.mark.filterwarnings("ignore:.*has no text encoder")
    def test_a_saved_folder_loads_and_runs_through_the_cli(self, pipe, tmp_path):
        """save_pretrained -> `--model wan:DIR` / `diffusers:DIR` dispatches on model_index.json to this backend;
        the loaded weights are the pipeline's, generate is the plain call, a probe runs through the CLI with the
        family's own sampling settings."""
        from typer.testing import CliRunner

        from steplens.cli import app

        F = self.family
        folder = tmp_path / "saved"
        pipe.save_pretrained(folder)
        model = self.load(folder)
        assert type(model) is type(F.model(pipe)) and model.prompt_source == "hashed"
        assert model.name == f"diffusers:{folder}"  # the canonical prefix (wan: as typed where typed)
        for component in ("transformer", "vae"):
            mine, back = getattr(pipe, component).state_dict(), getattr(model.pipe, component).state_dict()
            assert mine.keys() == back.keys() and all(torch.equal(mine[k], back[k]) for k in mine)
        s = maze(2)
        assert torch.equal(F.output(model.pipe, model.generate([s], [1], sampling=resolve(model, steps=2, guidance=F.cfg))),
                           F.direct(model.pipe, [s], [1], steps=2))
        for prefix in ("wan", "diffusers"):
            r = CliRunner().invoke(app, ["probe", "energy", "--model", f"{prefix}:{folder}", "--count", "1", "--size",
                                         "3", "--frames", "2", "--steps", "2", "--out", str(tmp_path / prefix)])
            assert r.exit_code == 0, r.output
            config = json.loads((tmp_path / prefix / "results.json").read_text())["config"]
            assert config["sampling"]["steps"] == 2 and config["shift"] == F.cli_shift
            assert config["sampling"]["sources"]["steps"] == "option"
            # the family recorded by its adapter's name, whichever prefix named the folder (issue 33 item 1)
            assert json.loads((tmp_path / prefix / "provenance.json").read_text())["family"] == model.backend
        self.check_saved(pipe, folder, model, tmp_path)
