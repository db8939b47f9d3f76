"""Wan2.2-TI2V-5B (tiny offline pipeline): the shared backend tests (backend_mixin) plus what only it has: the hub's
WanPipeline folder. Frame 0 as the image latent, its edits, UniPC: test_wan_ti2v_own.py."""
import json

import pytest
import torch
pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from backend_mixin import BackendTests  # noqa: E402
from families import WanTI2V, maze  # noqa: E402
from steplens.backends.wan import load_wan_model  # noqa: E402
from steplens.presets import resolve  # noqa: E402


class TestWanTI2V(BackendTests):
    family = WanTI2V()

    def check_trace(self, pipe, tr, guidance):
        assert all(s.calls == (2 if guidance > 1 else 1) and s.expert == "transformer" for s in tr.steps)

    def check_generate(self, pipe, model, lat, both):
        F, s = self.family, maze(4)
        assert torch.equal(model.generate([s, s], [7, 8], sampling=resolve(model, steps=F.steps, guidance=F.cfg)),
                           F.direct(pipe, [s, s], [7, 8]))
        torch.testing.assert_close(both[1], model.generate([maze(5)], [8], sampling=resolve(model, steps=F.steps, guidance=F.cfg))[0],
                                   rtol=0, atol=1e-4)

    def load(self, folder):
        return load_wan_model(str(folder))

    def check_saved(self, pipe, folder, model, tmp_path):
        from diffusers import WanImageToVideoPipeline

        assert isinstance(model.pipe, WanImageToVideoPipeline) and model.pipe.config.expand_timesteps
        s, kw = maze(2), dict(sampling=resolve(model, steps=2, shift=3.0, guidance=self.family.cfg))
        lat = model.generate([s], [1], **kw)  # the same weights at other addresses: float rounding only
        torch.testing.assert_close(lat, self.family.model(pipe).generate([s], [1], **kw), rtol=0, atol=1e-4)
        # the hub's Wan2.2-TI2V-5B-Diffusers folder names the class WanPipeline and lists no image encoder
        index = json.loads((folder / "model_index.json").read_text())
        hub = {k: v for k, v in index.items() if k not in ("image_encoder", "image_processor")}
        (folder / "model_index.json").write_text(json.dumps({**hub, "_class_name": "WanPipeline"}))
        again = load_wan_model(str(folder))
        assert isinstance(again.pipe, WanImageToVideoPipeline) and again.pipe.config.expand_timesteps
        assert again.pipe.image_encoder is None and torch.equal(again.generate([s], [1], **kw), lat)
        # a text-to-video WanPipeline folder (no expand_timesteps) is still refused, before any weights load
        (folder / "model_index.json").write_text(json.dumps({**hub, "_class_name": "WanPipeline",
                                                             "expand_timesteps": False}))
        with pytest.raises(ValueError, match="holds a WanPipeline; steplens' Wan backend supports"):
            load_wan_model(str(folder))
