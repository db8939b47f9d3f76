"""Few-step distillation (steplens.training.distill) on tiny `test` models: never the shipped one."""

import json

import pytest
import torch

from steplens.models import VideoDiT, get_arch
from steplens.models.weights import load_weights, save_weights
from steplens.sampling import flow_sigmas
from steplens.training.distill import DistillConfig, Distiller, main

CFG = dict(arch="test", batch=4, sizes={3: 1.0}, frames={2: 1.0, 3: 1.0}, warmup=2, eval_every=0, ckpt_every=2,
           lr=3e-3, teacher_steps=4, student_steps=2, eval_teacher=False)


def _weights(path, seed: int, zero_out: bool = False):
    """A tiny random model (a teacher with a non-zero velocity, or a student that starts at zero velocity)."""
    torch.manual_seed(seed)
    net = VideoDiT(get_arch("test"))
    if not zero_out:
        with torch.no_grad():
            for p in (net.proj_out.weight, net.proj_out.bias, net.time_projection[-1].weight):
                p.normal_(0, 0.3)
    save_weights(path, net, net.cfg.to_dict(), dtype=torch.float32)
    return str(path)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    return _weights(d / "teacher.safetensors", 0), _weights(d / "student0.safetensors", 1, zero_out=True)


def _state(d: Distiller) -> dict:
    sd = {f"model.{k}": v for k, v in d.model.state_dict().items()}
    sd.update({f"ema.{k}": v for k, v in d.ema.state_dict().items()})
    for i, st in d.opt.state_dict()["state"].items():
        sd.update({f"opt.{i}.{k}": v for k, v in st.items()})
    return sd


def test_student_sigmas_sit_on_the_teachers_grid():
    cfg = DistillConfig(teacher_steps=20, student_steps=4, shift=3.0)
    sig = cfg.student_sigmas()
    assert torch.equal(sig, flow_sigmas(20, 3.0)[::5]) and torch.equal(sig, flow_sigmas(4, 3.0))
    s = cfg.sampling()
    assert s["steps"] == 4 and s["shift"] == 3.0 and s["guidance"] == 1.0 and len(s["sigmas"]) == 5
    assert torch.equal(torch.tensor(s["sigmas"], dtype=torch.float32), sig)  # the JSON floats give the σ back exactly


def test_loss_falls_and_is_finite(tmp_path, models):
    teacher, student0 = models
    cfg = DistillConfig(**{**CFG, "lr": 5e-3}, teacher=teacher, init=student0, steps=30)
    d = Distiller(cfg, tmp_path)
    losses = [d.train_step()[0] for _ in range(30)]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5, losses


def test_student_from_the_teacher_matches_it_where_one_step_is_one_substep(tmp_path, models):
    teacher, _ = models
    # teacher_steps == student_steps: the teacher's own Euler step is the target, so the loss is 0 at the start
    d = Distiller(DistillConfig(**{**CFG, "teacher_steps": 2}, teacher=teacher, steps=1), tmp_path)
    per_item, _ = d.loss_terms(0)
    assert per_item.abs().max().item() < 1e-10


def test_resume_is_bit_exact(tmp_path, models):
    teacher, student0 = models
    cfg = DistillConfig(**CFG, teacher=teacher, init=student0, steps=6)
    straight = Distiller(cfg, tmp_path / "a")
    straight.run(progress=False, export=False)

    first = Distiller(cfg, tmp_path / "b")
    first.run(until=3, progress=False, export=False)  # "interrupted" at step 3 (checkpoint written at the stop)
    del first
    resumed = Distiller(cfg, tmp_path / "b")
    assert resumed.step == 3
    resumed.run(progress=False, export=False)

    a, b = _state(straight), _state(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    log = [json.loads(line) for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2, 3, 4, 6]
    assert all(r["loss"] > 0 and r["sec_per_step"] > 0 and len(r["loss_by_segment"]) == 2 for r in log)
    with pytest.raises(ValueError, match="another config.*lr"):
        Distiller(DistillConfig(**{**CFG, "lr": 1e-4}, teacher=teacher, init=student0, steps=6), tmp_path / "b")


def test_cli_trains_evaluates_and_exports_the_sampling_defaults(tmp_path, models, capsys):
    teacher, student0 = models
    cfg = {**CFG, "teacher": teacher, "init": student0, "steps": 2, "eval_every": 2, "eval_count": 2,
           "eval_tasks": ["maze"], "eval_teacher": True, "frames": {2: 1.0}, "eval_frames": 2}
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    out = tmp_path / "run"
    assert main(["--out", str(out), "--config", str(tmp_path / "c.json"), "--threads", "1", "--no-progress"]) == 0
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert log[0]["step"] == 0 and "teacher4_solve_rate_maze" in log[0] and "teacher2_solve_rate_maze" in log[0]
    assert log[-1]["step"] == 2 and 0 <= log[-1]["eval_solve_rate_maze"] <= 1 and log[-1]["eval_steps"] == 2
    state, arch, info = load_weights(out / "student.safetensors")
    assert info["sampling"]["steps"] == 2 and info["sampling"]["sigmas"] == [float(s) for s in flow_sigmas(2, 3.0)]
    assert info["step"] == 2 and info["distilled_from"]["sha256"] and info["train_config"]["tasks"] == {"maze": 1.0}
    assert main(["--out", str(out), "--config", str(tmp_path / "c.json"), "--export", str(tmp_path / "s.safetensors")]) == 0
    assert load_weights(tmp_path / "s.safetensors")[2]["sampling"]["steps"] == 2
    assert main(["--out", str(out), "--config", str(tmp_path / "nope.json")]) == 2
    assert "--config" in capsys.readouterr().err


@pytest.mark.parametrize("bad, message", [
    ({"student_steps": 3}, "student_steps \\(3\\) must divide teacher_steps \\(4\\)"),
    ({"student_steps": 0}, "student_steps must be >= 1, got 0"),
    ({"shift": -1.0}, "shift must be a finite number > 0"),
    ({"segment_weights": [1.0]}, "one weight per student step \\(2\\), got 1"),
    ({"segment_weights": [1.0, -1.0]}, "non-negative weights"),
    ({"start": "oracle"}, "start"),
    ({"mask_threshold": 0.0}, "mask_threshold must be in"),
    ({"batch": 0}, "batch must be >= 1, got 0"),
    ({"tasks": {"no-such-task": 1.0}}, "no-such-task"),
    ({"eval_tasks": ["tictactoe"]}, "eval_tasks names 'tictactoe', which is not in tasks"),
    ({"lerning_rate": 1.0}, "(?s)lerning_rate.*Extra inputs are not permitted"),
])
def test_config_rejects_bad_values(bad, message):
    with pytest.raises(ValueError, match=message):
        DistillConfig(**{**CFG, **bad})


def test_config_file_errors_name_the_file_and_the_shipped_config_validates(tmp_path):
    from pathlib import Path

    p = tmp_path / "bad.json"
    p.write_text(json.dumps({"student_steps": 3}))
    with pytest.raises(ValueError, match=r"distillation config .*bad.json: .*must divide"):
        DistillConfig.from_file(p)
    configs = Path(__file__).resolve().parents[2] / "configs"
    shipped = DistillConfig.from_file(configs / "distill" / "tiny-reasoner-4step.json")
    assert shipped.student_steps == 4 and shipped.teacher_steps == 20 and shipped.teacher == "tiny-reasoner"
    assert shipped.sampling()["sigmas"] == [round(float(s), 6) for s in flow_sigmas(4, 3.0)] == [1.0, 0.9, 0.75, 0.5, 0.0]


def test_teacher_of_another_architecture_is_refused(tmp_path, models):
    teacher, _ = models
    with pytest.raises(ValueError, match="another architecture"):
        Distiller(DistillConfig(**{**CFG, "arch": "tiny-maze"}, teacher=teacher, steps=1), tmp_path)


@pytest.mark.parametrize("warmup, decay", [(False, 0.5), (True, 0.1)])
def test_ema_starts_at_the_init_and_its_warm_up_is_optional(tmp_path, models, warmup, decay):
    teacher, student0 = models
    d = Distiller(DistillConfig(**CFG, teacher=teacher, init=student0, steps=1, ema_decay=0.5, ema_warmup=warmup),
                  tmp_path)
    before = d.ema.proj_out.weight.clone()
    d.train_step()
    expected = before + (d.model.proj_out.weight - before) * (1 - decay)
    assert torch.allclose(d.ema.proj_out.weight, expected, atol=1e-7)
