"""HunyuanVideo-1.5 (tiny offline pipeline): the shared backend tests (backend_mixin) plus what only it has: two
forwards per CFG step (cond, then uncond), a fixed shift of 5, model options on load. More: test_hunyuan15_own.py."""

import pytest
import torch
diffusers = pytest.importorskip("diffusers")
pytest.importorskip("transformers")
if not hasattr(diffusers, "HunyuanVideo15ImageToVideoPipeline"):
    pytest.skip("this diffusers has no HunyuanVideo-1.5", allow_module_level=True)

from backend_mixin import BackendTests  # noqa: E402
from families import Hunyuan15, maze  # noqa: E402
from steplens.backends import backends, load_pipeline_model  # noqa: E402
from steplens.backends.hunyuan15 import HunyuanVideo15Model, decode_latents  # noqa: E402
from steplens.presets import resolve  # noqa: E402


class TestHunyuan15(BackendTests):
    family = Hunyuan15()

    def check_trace(self, pipe, tr, guidance):
        assert tr.steps[0].sigma == 1.0 and tr.steps[1].sigma == pytest.approx(5 * (2 / 3) / (1 + 4 * (2 / 3)))
        for st in tr.steps:
            assert st.calls == len(st.branches) == (2 if guidance > 1 else 1)  # one forward per CFG branch
            if guidance > 1:  # the guider's CFG of the two forwards, cond first
                cond, uncond = st.branches
                torch.testing.assert_close(st.v, uncond + guidance * (cond - uncond), rtol=0, atol=1e-5)

    def check_generate(self, pipe, model, lat, both):
        F, s, s2 = self.family, maze(4), maze(5)
        # one image, several seeds (an ensemble's members): the plain call with a list of generators
        assert torch.equal(model.generate([s, s], [7, 8], sampling=resolve(model, steps=F.steps)), F.direct(pipe, [s, s], [7, 8]))
        torch.testing.assert_close(both[1], model.generate([s2], [8], sampling=resolve(model, steps=F.steps))[0], rtol=0, atol=1e-4)
        d = model.sampling_defaults()  # the pipeline's 50 steps, the guider's 6, the scheduler's shift 5
        assert (d["steps"], d["guidance"], d["shift"]) == (50, F.cfg, 5.0)

    def check_decode(self, pipe, lat, own):
        assert torch.equal(decode_latents(pipe, lat, "pt"), own)

    def load(self, folder):
        with pytest.warns(UserWarning, match="has no text encoder"):
            return HunyuanVideo15Model.load(str(folder), glyph_length=self.family.glyph)

    def check_saved(self, pipe, folder, model, tmp_path):
        assert backends()["HunyuanVideo15ImageToVideoPipeline"] is HunyuanVideo15Model
        with pytest.warns(UserWarning, match="has no text encoder"):
            assert isinstance(load_pipeline_model(f"wan:{folder}"), HunyuanVideo15Model)
        with pytest.warns(UserWarning, match="has no text encoder"):  # the registry's load path takes model options
            opts = load_pipeline_model(f"wan:{folder}", glyph_length=self.family.glyph, scale=8, min_size=None)
        assert (opts.glyph_length, opts.scale) == (self.family.glyph, 8) and isinstance(opts, HunyuanVideo15Model)
