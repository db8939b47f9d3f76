"""The demo's search panel (issue 24): on a sample one seed leaves unsolved, early-beam's winner is traced by its own
seed, and that trace is exactly what the search chose; the report shows both viewers side by side."""

import json

import numpy as np
import torch

from steplens.presets import resolve
from steplens.orchestrators.demo_search import hard_one, search_panel
from steplens.io.video import to_rgb
from steplens.methods.search import SearchConfig, decoded, search
from steplens.models.load import load_model
from steplens.tasks import get_task
from steplens.trace import trace

STEPS = 8


def _hard_traces(model):
    task = get_task("maze")
    samples = [task.sample(i, 7, idx=i) for i in range(6)]  # two sizes above tiny-maze's comfort: one seed fails
    return trace(model, samples, [s.seed for s in samples], sampling=resolve(model, steps=STEPS))


def test_the_panel_traces_early_beams_winner_by_its_seed(tmp_path):
    model = load_model("tiny-maze")
    traces = _hard_traces(model)
    hard = hard_one(traces)
    assert hard is not None and not hard.final_score["success"]
    rec = search_panel(model, tmp_path, traces, {hard.sample.name: "<div>left</div>"}, resolve(model, steps=STEPS), None)
    assert rec["sample"] == hard.sample.name and rec["one_seed"]["solved"] is False
    assert rec["search"]["nfe"] > rec["one_seed_nfe"]  # eight seeds to the beam step, one to the end
    # the winner's own trace is the search's answer: the same video
    res = search(model, [hard.sample], [hard.seed], SearchConfig(method="early-beam", n=8, m=1, k=rec["beam_step"]),
                 sampling=resolve(model, steps=STEPS))
    chosen = decoded(model, res.latents)[0]
    tr = json.loads((tmp_path / rec["trace"] / "metrics.json").read_text())
    assert tr["seed"] == rec["search"]["seed"] == res.survivors[0].seed
    won = trace(model, [hard.sample], [rec["search"]["seed"]], sampling=resolve(model, steps=STEPS))[0]
    mine = np.clip(np.round(to_rgb(won.output.movedim(1, 0))), 0, 255).astype(np.uint8)
    assert np.abs(mine.astype(int) - chosen.astype(int)).max() <= 1
    assert rec["search"]["verified"] == bool(res.scores[0].success)
    assert 'class="slp"' in rec["html"] and "<div>left</div>" in rec["html"]


def test_no_panel_when_one_seed_solves_every_traced_sample(tmp_path):
    model = load_model("tiny-maze")
    task = get_task("maze")
    traces = trace(model, [task.sample(0, 3, idx=0)], [0], sampling=resolve(model, steps=20))
    assert traces[0].final_score["success"]  # a 3x3 maze is easy for tiny-maze
    assert search_panel(model, tmp_path, traces, {}, resolve(model, steps=20), None) is None
    assert not any(tmp_path.iterdir())
