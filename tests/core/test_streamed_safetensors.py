"""steplens.io.tensors.StreamedSafetensors (a trace's x0_hat written one decoded step at a time): save_file's bytes,
and nothing left behind when a part is missing, out of order or too large."""

import re

import pytest
import torch
from safetensors.torch import load_file, save_file

from steplens.io.tensors import StreamedSafetensors


def test_rows_written_one_at_a_time_give_save_files_bytes(tmp_path):
    g = torch.Generator().manual_seed(0)
    x0, out, sig = torch.randn(4, 3, 2, 5, 7, generator=g), torch.randn(3, 2, 5, 7, generator=g), torch.rand(4)
    save_file({"x0": x0, "output": out, "sigmas": sig}, str(tmp_path / "whole.safetensors"))
    with StreamedSafetensors(tmp_path / "rows.safetensors", {"x0": x0.shape, "output": out.shape,
                                                             "sigmas": sig.shape}) as f:
        f.write("output", out)
        f.write("sigmas", sig)
        for k in range(4):
            f.write("x0", x0[k:k + 1])
    assert (tmp_path / "rows.safetensors").read_bytes() == (tmp_path / "whole.safetensors").read_bytes()
    assert torch.equal(load_file(str(tmp_path / "rows.safetensors"))["x0"], x0)


def test_missing_out_of_order_or_overrunning_parts_leave_no_file(tmp_path):
    shapes = {"x0": (2, 3), "output": (3,)}
    cases = [(lambda f: f.write("output", torch.zeros(3)), "x0 not written in full"),
             (lambda f: f.write("x0", torch.zeros(1, 3)), "'output' is written before 'x0'"),
             (lambda f: f.write("output", torch.zeros(4)), "overruns its shape (3,)"),
             (lambda f: f.write("output", torch.zeros(3, dtype=torch.float64)), "does not fit its float32 shape"),
             (lambda f: f.write("sigmas", torch.zeros(3)), "no tensor 'sigmas'")]
    for act, message in cases:
        with pytest.raises((ValueError, KeyError), match=re.escape(message)):
            with StreamedSafetensors(tmp_path / "t.safetensors", shapes) as f:
                act(f)
        assert list(tmp_path.iterdir()) == [], message
