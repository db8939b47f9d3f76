"""LTX-2 (tiny offline pipeline): the shared backend tests (backend_mixin) plus what only it has: frame 0 held as the
image latent, CFG as one forward on [uncond; cond], audio, a dynamic shift. More: test_ltx2_own.py."""
import pytest
import torch

diffusers = pytest.importorskip("diffusers")
pytest.importorskip("transformers")
if not hasattr(diffusers, "LTX2ImageToVideoPipeline"):
    pytest.skip("this diffusers has no LTX-2", allow_module_level=True)

from backend_mixin import BackendTests  # noqa: E402
from families import LTX2, maze  # noqa: E402
from steplens.backends.ltx2 import load_ltx2_model  # noqa: E402
from steplens.presets import resolve  # noqa: E402


class TestLTX2(BackendTests):
    family = LTX2()

    def check_trace(self, pipe, tr, guidance):
        assert tr.steps[-1].sigma == pytest.approx(0.1)  # LTX-2's shift_terminal
        assert tr.audio_scheduler is not pipe.scheduler and "step" not in vars(tr.audio_scheduler)
        for s in tr.steps:
            assert torch.equal(s.x[:, :, :1], tr.steps[0].x[:, :, :1])  # frame 0: the clean image latent, held
            assert torch.equal(s.x0[:, :, :1], s.x[:, :, :1]) and not s.v[:, :, :1].any()
            assert s.calls == 1 and len(s.branches) == 1  # CFG is one forward on [uncond; cond]
            assert s.branches[0].shape[0] == (2 if guidance > 1 else 1)

    def check_x0_edit(self, pipe, tr0, tr, w):
        assert torch.equal(tr.steps[2].x[:, :, :1], w[:, :, :1])  # frame 0 is the edited x0_hat's

    def check_generate(self, pipe, model, lat, both):
        F, s = self.family, maze(4)  # a batch of different samples is one pipeline call with a list of images
        assert torch.equal(F.output(pipe, both), F.direct(pipe, [s, maze(5)], [7, 8]))
        assert torch.equal(model.generate([s], [7], sampling=resolve(model, steps=F.steps, shift=float("nan"), guidance=F.cfg)), lat)
        inputs = model.pipeline_inputs(s, 7, steps=F.steps, guidance=F.cfg)  # the same call
        assert torch.equal(pipe(**inputs, return_dict=False)[0], F.output(pipe, lat))

    def load(self, folder):
        return load_ltx2_model(str(folder))

    def check_saved(self, pipe, folder, model, tmp_path):
        from typer.testing import CliRunner

        from steplens.cli import app

        r = CliRunner().invoke(app, ["eval", "--model", f"diffusers:{folder}", "--preset", "vbvr", "--count", "1"])
        assert r.exit_code == 2 and "applies to Wan pipelines" in " ".join(r.output.split()), r.output
        sp = resolve(model, None)  # dynamic shift kept: shift None
        assert sp.shift is None and sp.steps == model.sampling_defaults()["steps"]
