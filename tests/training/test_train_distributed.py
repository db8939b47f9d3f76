"""Data-parallel training under torchrun: 2 CPU processes (gloo), gradients all-reduced."""

import json

import torch

from steplens.models.weights import read_safetensors
from steplens.training.train import TrainConfig, Trainer, draw_batch, loss_fn

CFG = dict(arch="test", batch=4, sizes={3: 1.0}, frames={2: 1.0, 3: 1.0}, warmup=1, eval_every=0, ckpt_every=3,
           steps=3, lr=3e-3, threads=1)


def test_two_process_training_equals_the_averaged_gradient_step(torchrun, tmp_path):
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(json.dumps(CFG))
    r = torchrun("-m", "steplens.cli", "train", "--out", tmp_path / "run", "--config", cfg_path)
    assert r.returncode == 0, r.stderr[-3000:]
    tensors, meta = read_safetensors(tmp_path / "run" / "checkpoint.safetensors")
    assert meta["step"] == "3"

    # the same 3 steps in one process: each step's gradient is the mean of both processes' batch gradients
    cfg = TrainConfig(**CFG)
    tr = Trainer(cfg, tmp_path / "single")
    codec = tr.codec
    for step in range(3):
        for g in tr.opt.param_groups:
            g["lr"] = 3e-3 * min(1.0, (step + 1) / 1)
        tr.opt.zero_grad(set_to_none=True)
        for rank in range(2):
            loss = loss_fn(tr.model, cfg, *draw_batch(cfg, step, codec, "cpu", rank, 2)) / 2
            loss.backward()
        torch.nn.utils.clip_grad_norm_(tr.model.parameters(), cfg.grad_clip)
        tr.opt.step()
    for k, v in tr.model.state_dict().items():
        torch.testing.assert_close(tensors[f"model.{k}"], v, rtol=1e-4, atol=1e-5)
