"""Backtracking along time end to end on the tiny diffusers pipelines (issue 35): the Wan2.2 folder with its LoRA pair
(K-frame conditioning traced == untraced on the LoRA'd experts, then `eval --search backtrack` from the command line)
and LTX-2; a model that cannot be given frames (Wan2.2-TI2V) refused before any forward, saying why."""

import json

import pytest
import torch

pytest.importorskip("diffusers")

from builders import held_wan22, maze_plugin  # noqa: E402
from steplens.presets import resolve  # noqa: E402
from steplens.tasks import Score  # noqa: E402
from steplens.methods.search import SearchConfig, search  # noqa: E402
from steplens.tape import forwards  # noqa: E402
from steplens.tasks import continue_from_frames, draw, get_task  # noqa: E402

pytestmark = pytest.mark.wan
STEPS = 2


def maze(seed=0, frames=4, task="maze"):
    return draw(get_task(task), seed, "test", 3, frames, idx=seed)


def no_rule_before_the_end(video, sample):
    """A family with no rule for a video not over yet (every unfinished frame passes; the finished one is judged by
    the maze's checker): backtracking then keeps all but the last frame and generates that again, given the rest."""
    return Score(score=1.0, success=True)


def check_k_frames(model, guidance, frames=4):
    """Backtracking that keeps frames: every unfinished frame passes, so a refused video is generated again given all
    but its last frame (K = frames - 1), through the model's K-frame conditioning."""
    with maze_plugin("test-no-partial-rule", no_rule_before_the_end) as name:
        samples = [maze(i, frames, task=name) for i in range(2)]
        res = search(model, samples, [0, 1], SearchConfig(method="backtrack", n=2, verifier="checker"), sampling=resolve(model, steps=STEPS,
                     guidance=guidance))
    for hist in res.backtracks:
        assert [h["known"] for h in hist] == [1, frames - 1][:len(hist)]
    assert any(len(h) == 2 for h in res.backtracks)  # some video refused, then generated given 3 of its 4 frames
    return res


def check_generations(res, samples, steps, branches=1):
    """Every generation recorded, each a full run (NFE per sample and CFG branch = steps x generations); a later
    generation starts from the frames its predecessor kept (they passed the rules)."""
    gens = sum(len(h) for h in res.backtracks)
    assert len(res.backtracks) == len(samples) and res.nfe.nfe == steps * gens * branches
    for hist in res.backtracks:
        assert hist[0]["known"] == 1 and all(len(h["checks"]) == samples[0].frames for h in hist)
        for a, b in zip(hist, hist[1:]):
            assert not a["accepted"] and b["known"] >= a["known"] and all(b["checks"][:b["known"]])
    return gens


@pytest.fixture(scope="module")
def held(tmp_path_factory):
    root = tmp_path_factory.mktemp("held")
    one, two = held_wan22(root)
    return root / "wan22", one, two


def test_backtrack_on_wan22_with_its_lora_pair(held, tmp_path):
    from typer.testing import CliRunner

    from steplens.cli import app
    from steplens.models.load import load_model

    folder, one, two = held
    model = load_model(f"wan:{folder}", lora=str(one), lora_2=str(two))
    plain = load_model(f"wan:{folder}")
    s = maze()
    given = continue_from_frames(s, s.ground_truth, 2)
    lat = model.generate([given], [5], sampling=resolve(model, steps=STEPS, guidance=1.0))
    seen = []
    assert torch.equal(model.generate([given], [5], sampling=resolve(model, steps=STEPS, guidance=1.0), callback=seen.append), lat)
    assert len(seen) == STEPS and {st.expert for st in seen} == {"transformer", "transformer_2"}
    plain_lat = plain.generate([given], [5], sampling=resolve(plain, steps=STEPS, guidance=1.0))
    assert not torch.equal(plain_lat, lat)  # the LoRAs count
    samples = [maze(i) for i in range(3)]
    with forwards(model) as c:
        res = search(model, samples, [0, 1, 2], SearchConfig(method="backtrack", n=3, verifier="checker"),
                     sampling=resolve(model, steps=STEPS, guidance=1.0))
    gens = check_generations(res, samples, STEPS)
    assert c.nfe == res.nfe.nfe and gens > len(samples)  # some sample was generated again (else nothing backtracked)
    check_k_frames(model, 1.0)
    r = CliRunner().invoke(app, ["eval", "--model", f"wan:{folder}", "--lora", str(one), "--lora-2", str(two),
                                 "--search", "backtrack", "--particles", "2", "--verifier", "checker", "--task", "maze",
                                 "--size", "3", "--frames", "4", "--count", "2", "--steps", str(STEPS), "--guidance",
                                 "1", "--out", str(tmp_path / "ev")])
    assert r.exit_code == 0, r.output
    out = json.loads((tmp_path / "ev" / "results.json").read_text())
    rows = out["per_sample"]
    assert out["search"]["method"] == "backtrack" and len(rows) == 2
    assert all(1 <= x["generations"] <= 2 and len(x["first_failures"]) == x["generations"] for x in rows)
    assert out["nfe_per_sample"] == STEPS * sum(x["generations"] for x in rows) / 2


def test_backtrack_on_ltx2():
    from steplens.backends.ltx2 import LTX2PipelineModel
    from steplens.backends.ltx2.tiny import tiny_ltx2_i2v

    pipe = tiny_ltx2_i2v(seed=0)
    pipe.set_progress_bar_config(disable=True)
    model = LTX2PipelineModel(pipe)
    samples = [maze(i) for i in range(3)]
    res = search(model, samples, [0, 1, 2], SearchConfig(method="backtrack", n=3, verifier="checker"), sampling=resolve(model, steps=STEPS,
                 guidance=3.0))
    gens = check_generations(res, samples, STEPS, branches=2)
    assert gens > len(samples)
    check_k_frames(model, 3.0)
    for hist, lat in zip(res.backtracks, res.latents):  # the answer: the last generation, its given frames held
        assert torch.isfinite(lat).all() and hist[-1]["known"] >= 1


def test_a_model_that_cannot_be_given_frames_is_refused_before_any_forward():
    from steplens.backends.wan.model import WanPipelineModel
    from steplens.backends.wan.tiny import tiny_wan22_ti2v

    ti2v = WanPipelineModel(tiny_wan22_ti2v())
    with forwards(ti2v) as c, pytest.raises(ValueError, match=r"cannot be given leading frames: Wan2\.2-TI2V-5B "
                                                              r"conditions on its first frame"):
        search(ti2v, [maze()], [0], SearchConfig(method="backtrack", n=2, verifier="checker"),
               sampling=resolve(ti2v, steps=STEPS))
    assert c.nfe == 0
