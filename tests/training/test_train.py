import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from steplens.models.weights import load_weights, save_weights
from steplens.training.train import TrainConfig, Trainer, draw_batch, loss_fn

CFG = dict(arch="test", batch=4, sizes={3: 1.0, 4: 1.0}, frames={2: 1.0, 3: 1.0}, warmup=2, eval_every=0,
           ckpt_every=2, lr=3e-3)


def _state(tr: Trainer) -> dict:
    sd = {f"model.{k}": v for k, v in tr.model.state_dict().items()}
    sd.update({f"ema.{k}": v for k, v in tr.ema.state_dict().items()})
    for i, st in tr.opt.state_dict()["state"].items():
        sd.update({f"opt.{i}.{k}": v for k, v in st.items()})
    return sd


def test_resume_matches_uninterrupted_training(tmp_path):
    cfg = TrainConfig(**CFG, steps=6)
    straight = Trainer(cfg, tmp_path / "a")
    straight.run(progress=False)

    first = Trainer(cfg, tmp_path / "b")
    first.run(until=3, progress=False)  # "interrupted" at step 3 (checkpoint written at the stop)
    del first
    resumed = Trainer(cfg, tmp_path / "b")
    assert resumed.step == 3
    resumed.run(progress=False)

    a, b = _state(straight), _state(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert len((tmp_path / "b" / "log.jsonl").read_text().splitlines()) >= 3


def test_training_reduces_the_loss(tmp_path):
    cfg = TrainConfig(**{**CFG, "batch": 8, "sizes": {3: 1.0}, "frames": {2: 1.0}}, steps=40)
    tr = Trainer(cfg, tmp_path)
    losses = [tr.train_step() for _ in range(40)]
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5


def test_checkpoint_with_other_config_is_refused(tmp_path):
    Trainer(TrainConfig(**CFG, steps=2), tmp_path).run(progress=False)
    with pytest.raises(ValueError, match="another config.*lr"):
        Trainer(TrainConfig(**{**CFG, "lr": 1e-4}, steps=4), tmp_path)


def test_lr_decays_along_a_cosine_over_the_last_steps():
    from steplens.training.train import lr_at

    cfg = TrainConfig(**{**CFG, "warmup": 4, "lr": 1.0}, steps=20, decay_steps=8)
    lrs = [lr_at(cfg, s) for s in range(20)]
    assert lrs[:4] == [0.25, 0.5, 0.75, 1.0] and lrs[4:12] == [1.0] * 8  # warm-up, then constant until step 12
    tail = lrs[12:]
    assert all(a > b for a, b in zip(tail, tail[1:])) and 0 < tail[-1] < 0.05
    assert abs(lrs[15] - 0.5 * (1 + math.cos(math.pi * 4 / 9))) < 1e-12
    assert [lr_at(TrainConfig(**CFG, steps=20), s) for s in (3, 19)] == [3e-3, 3e-3]  # no decay by default


def test_resume_may_add_a_decay_that_starts_later_but_never_rewrite_the_past(tmp_path):
    Trainer(TrainConfig(**CFG, steps=4), tmp_path).run(progress=False)  # constant LR, stopped at step 4
    # a decay over steps 6..10 leaves steps 0..3 as they were: accepted, and the log shows the decay
    tr = Trainer(TrainConfig(**CFG, steps=10, decay_steps=4), tmp_path)
    assert tr.step == 4
    tr.run(progress=False)
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 10 and log[-1]["lr"] < 0.2 * CFG["lr"]
    # the decay began at step 6: moving it (longer run, or another length) would change steps 6..9
    for steps, decay in ((12, 4), (10, 6), (10, 0)):
        with pytest.raises(ValueError, match=f"step 10: steps={steps}, decay_steps={decay} would change"):
            Trainer(TrainConfig(**CFG, steps=steps, decay_steps=decay), tmp_path)
    assert Trainer(TrainConfig(**CFG, steps=10, decay_steps=4), tmp_path).step == 10  # the same schedule resumes


def test_weights_roundtrip_and_bad_files(tmp_path):
    tr = Trainer(TrainConfig(**CFG, steps=2), tmp_path)
    tr.run(progress=False)
    save_weights(tmp_path / "w.safetensors", tr.ema, {"arch": "test"}, {"step": 2}, dtype=torch.float32)
    state, arch, info = load_weights(tmp_path / "w.safetensors")
    for k, v in tr.ema.state_dict().items():
        assert torch.equal(state[k], v)
    assert info == {"step": 2}
    # a training checkpoint loads as its EMA weights
    state2, _, info2 = load_weights(tmp_path / "checkpoint.safetensors")
    assert info2["step"] == 2 and torch.equal(state2["proj_out.weight"], tr.ema.proj_out.weight)

    with pytest.raises(FileNotFoundError, match="not found.*nope.safetensors"):
        load_weights(tmp_path / "nope.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all" + b"\x00" * 64)
    with pytest.raises(ValueError, match="corrupt or not a safetensors file"):
        load_weights(bad)
    trunc = tmp_path / "trunc.safetensors"
    trunc.write_bytes((tmp_path / "w.safetensors").read_bytes()[:-100])
    with pytest.raises(ValueError, match="corrupt"):
        load_weights(trunc)


def test_config_validation():
    with pytest.raises(ValueError, match="positive sum"):
        TrainConfig(sizes={5: 0.0})
    with pytest.raises(ValueError, match="decay_steps must be >= 0, got -1"):
        TrainConfig(decay_steps=-1)
    with pytest.raises(ValueError, match="eval_sizes names 'reappear', which is not in tasks"):
        TrainConfig(eval_sizes={"reappear": 7})
    with pytest.raises(ValueError, match=r"eval_sizes\['reappear'\].*from 3 to 11.*got 13"):
        TrainConfig(tasks={"reappear": 1.0}, task_sizes={"reappear": {5: 1.0}}, eval_sizes={"reappear": 13})


def test_evaluation_reads_each_task_at_its_eval_size(tmp_path):
    cfg = TrainConfig(**{**CFG, "tasks": {"maze": 1.0, "reappear": 1.0}, "task_sizes": {"reappear": {5: 1.0}},
                         "eval_count": 2, "eval_steps": 1, "eval_frames": 3}, steps=1, eval_sizes={"reappear": 9})
    rec = Trainer(cfg, tmp_path).evaluate()
    assert set(rec) >= {"eval_solve_rate_maze", "eval_solve_rate_reappear"}
    assert rec["eval_sizes"] == {"maze": 5, "reappear": 9}


def test_init_from_weights_starts_there(tmp_path):
    base = Trainer(TrainConfig(**CFG, steps=2), tmp_path / "base")
    base.run(progress=False)
    save_weights(tmp_path / "w.safetensors", base.ema, base.model.cfg.to_dict(), dtype=torch.float32)
    tuned = Trainer(TrainConfig(**CFG, steps=2, init=str(tmp_path / "w.safetensors"),
                                tasks={"maze": 1.0, "maze-two-goals": 1.0}), tmp_path / "tuned")
    for k, v in base.ema.state_dict().items():
        assert torch.equal(tuned.model.state_dict()[k], v) and torch.equal(tuned.ema.state_dict()[k], v)
    tuned.run(progress=False)
    assert tuned.step == 2
    with pytest.raises(ValueError, match="another architecture"):
        Trainer(TrainConfig(**{**CFG, "arch": "tiny-maze"}, steps=2, init=str(tmp_path / "w.safetensors")),
                tmp_path / "other")


def test_multi_task_training_draws_each_task_at_its_own_sizes():
    from steplens.models import BorderCodec
    from steplens.training.train import TrainConfig, draw_batch

    cfg = TrainConfig.from_file(Path(__file__).resolve().parents[2] / "configs" / "tiny-reasoner.json")
    cfg = cfg.model_copy(update={"batch": 2, "init": None})
    seen = set()
    for step in range(40):
        x0, _, _, _ = draw_batch(cfg, step, BorderCodec())
        seen.add(tuple(x0.shape[-2:]))
    assert (24, 24) in seen and any(s[0] in (8, 10, 12, 14) for s in seen)  # tic-tac-toe boards and mazes
    with pytest.raises(ValueError, match="tictactoe takes 1..3"):
        TrainConfig(tasks={"tictactoe": 1.0}, task_sizes={"tictactoe": {5: 1.0}})
    with pytest.raises(ValueError, match="do not suit task 'tictactoe'"):
        TrainConfig(tasks={"tictactoe": 1.0})


def test_evaluation_takes_each_tasks_own_size_where_eval_size_does_not_fit():
    from steplens.training.train import eval_size_for

    assert eval_size_for("maze", 5) == 5 and eval_size_for("symmetry", 5) == 6 and eval_size_for("tictactoe", 5) == 2


CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.json"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_training_config_validates(path):
    cfg = TrainConfig.from_file(path)
    assert cfg.steps > 0 and sum(cfg.tasks.values()) > 0


@pytest.mark.parametrize("kw, message", [
    ({"path_weight": -1.0}, "path_weight must be >= 0 (a negative weight trains against the answer), got -1.0"),
    ({"weight_decay": -0.1}, "weight_decay must be >= 0, got -0.1"),
    ({"frames": {1: 1.0}}, "frames: a sample has at least 2 frames (the first frame and the answer), got 1"),
    ({"frames": {0: 0.5, 3: 0.5}}, "frames: a sample has at least 2 frames"),
    ({"frames": {-2: 1.0}}, "got -2"),
    ({"eval_frames": 1}, "eval_frames must be >= 2"),
])
def test_config_values_that_would_train_wrong_or_crash_later_are_named(kw, message, tmp_path):
    """Issue 22's battery: a negative path_weight was accepted, a malformed frames map passed validation and crashed
    in the first batch."""
    with pytest.raises(ValueError) as e:
        TrainConfig(**kw)
    assert message in str(e.value), str(e.value)
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"arch": "test", **{k: ({str(a): b for a, b in v.items()} if isinstance(v, dict)
                                                       else v) for k, v in kw.items()}}))
    with pytest.raises(ValueError) as e:
        TrainConfig.from_file(path)
    assert str(path) in str(e.value) and message.split(",")[0] in str(e.value), str(e.value)


def test_an_anchor_keeps_the_image_to_video_function_while_frame_prefixes_are_learnt(tmp_path):
    """`anchor`: on a K = 1 batch the loss regresses onto the anchor's velocity (learning without forgetting), so a
    fine-tune from the anchor's own weights that sees only K = 1 batches has nothing to learn and stays put, where
    the flow-matching loss moves it; a K = 2 batch still learns from the data."""
    base = Trainer(TrainConfig(**CFG, steps=4), tmp_path / "base")
    base.run(progress=False)
    w = tmp_path / "w.safetensors"
    save_weights(w, base.ema, base.model.cfg.to_dict(), dtype=torch.float32)
    one = {**CFG, "sizes": {3: 1.0}, "frames": {3: 1.0}, "init": str(w)}
    kept = Trainer(TrainConfig(**one, steps=5, anchor=str(w)), tmp_path / "kept")
    moved = Trainer(TrainConfig(**one, steps=5), tmp_path / "moved")
    kept_losses = [kept.train_step() for _ in range(5)]
    moved.run(progress=False)
    start = base.ema.state_dict()
    assert max(kept_losses) < 1e-10, kept_losses
    assert all(torch.equal(kept.model.state_dict()[k], v) for k, v in start.items())
    assert not all(torch.equal(moved.model.state_dict()[k], v) for k, v in start.items())
    cfg = TrainConfig(**one, steps=2, anchor=str(w), prefix={1: 0.001, 2: 1.0})
    x0, eps, sigma, cond = draw_batch(cfg, 0, kept.codec)
    assert cond.prefix is not None and cond.prefix.shape[2] == 2  # a K = 2 batch
    with_anchor = loss_fn(kept.model, cfg, x0, eps, sigma, cond, kept.anchor)
    assert with_anchor > 1e-4 and torch.equal(with_anchor, loss_fn(kept.model, cfg, x0, eps, sigma, cond))


def test_an_anchor_of_another_architecture_is_refused_before_training(tmp_path):
    base = Trainer(TrainConfig(**CFG, steps=1), tmp_path / "base")
    save_weights(tmp_path / "w.safetensors", base.model, base.model.cfg.to_dict(), dtype=torch.float32)
    with pytest.raises(ValueError, match="anchor weights .* another architecture"):
        Trainer(TrainConfig(**{**CFG, "arch": "tiny-maze"}, steps=1, anchor=str(tmp_path / "w.safetensors")),
                tmp_path / "other")


def test_a_run_shorter_than_its_decay_may_grow_the_lr_of_its_steps_is_unchanged(tmp_path):
    """steps < decay_steps: the decay starts at step 0 whatever `steps` is, so growing the run changes no step
    already taken (distillation's configs do this: --steps 300 against decay_steps 2,000); it was refused."""
    Trainer(TrainConfig(**CFG, steps=4, decay_steps=10), tmp_path).run(progress=False)
    grown = Trainer(TrainConfig(**CFG, steps=8, decay_steps=10), tmp_path)
    assert grown.step == 4
    with pytest.raises(ValueError, match="would change"):  # another decay length does change them
        Trainer(TrainConfig(**CFG, steps=8, decay_steps=12), tmp_path)


@pytest.mark.parametrize("key", ["init", "anchor"])
def test_weights_a_config_names_that_are_missing_are_refused_naming_the_key_and_what_is_allowed(key, tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        Trainer(TrainConfig(**CFG, steps=1, **{key: "tiny-reasonr"}), tmp_path / "run")
    msg = str(e.value)
    assert f"`{key}`" in msg and "'tiny-reasonr'" in msg and "tiny-reasoner" in msg and ".safetensors" in msg, msg
    assert not (tmp_path / "run").exists()
