"""Wan2.2-I2V-A14B (tiny offline WanImageToVideoPipeline, two experts): the shared backend tests (backend_mixin) plus
what only it has: the expert switch at the boundary, the scheduler's own sigmas, solve_rate. Its schedulers, LoRAs,
presets and loading: the other test_wan_*.py files."""

import pytest

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

import torch  # noqa: E402

from backend_mixin import BackendTests  # noqa: E402
from families import Wan22, maze  # noqa: E402
from steplens.presets import resolve  # noqa: E402
from steplens.models.load import load_model  # noqa: E402


class TestWan22(BackendTests):
    family = Wan22()

    def check_trace(self, pipe, tr, guidance):
        assert all(s.calls == (2 if guidance > 1 else 1) for s in tr.steps)  # one forward per CFG branch
        assert [s.expert for s in tr.steps] == [self.family.expert_at(pipe, k) for k in range(self.family.steps)]

    def check_generate(self, pipe, model, lat, both):
        F, s = self.family, maze(4)  # the same image twice with two seeds (an ensemble's members): one plain batch
        assert torch.equal(model.generate([s, s], [7, 8], sampling=resolve(model, steps=F.steps, guidance=F.cfg)),
                           F.direct(pipe, [s, s], [7, 8]))

    def check_callback(self, pipe, model, steps):
        ref = type(pipe.scheduler).from_config(pipe.scheduler.config)
        ref.set_timesteps(self.family.steps)
        assert [st.sigma for st in steps] == ref.sigmas[:-1].tolist()
        assert {st.expert for st in steps} == {"transformer", "transformer_2"}  # both experts ran

    def check_experiments(self, pipe, model):
        from steplens.experiments.evaluate import solve_rate

        res = solve_rate(model, "maze", range(2), n=3, frames=2, sampling=resolve(model, steps=2, shift=3.0), progress=False)
        assert res["n"] == 2 and 0 <= res["mean_score"] <= 1
        mask = torch.zeros(7, 7, dtype=torch.bool)
        mask[1, 1:4] = True
        assert torch.equal(model.token_mask(mask), mask)  # tokens are maze pixels

    def load(self, folder):
        return load_model(f"diffusers:{folder}")
