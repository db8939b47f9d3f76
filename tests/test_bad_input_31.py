"""Issue 31's battery of bad inputs (beside tests/test_bad_input.py): each defect the held-out battery found, as a
test written before its fix. Every refusal is exit 2 with one clear line naming the value, the option or file and
what is allowed; never a traceback, never a hang, never a model load for what could be refused without one."""

import json
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from steplens.cli import app
from steplens.tasks import get_task, write_sample


def _cli(*args):
    r = CliRunner().invoke(app, [str(a) for a in args])
    return r, " ".join(r.output.split())


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("b31")
    for i in range(2):
        write_sample(root / "data", get_task("maze").sample(i, 3, 3, idx=i), scale=2)
    return root / "data"


# -- long values are shortened in every message (one helper: steplens.io.checks.shorten)

def test_a_60000_word_prompt_is_shortened_in_the_error(tmp_path):
    write_sample(tmp_path / "long", get_task("maze").sample(0, 3, 3, idx=0), scale=2)
    (tmp_path / "long" / "maze" / "00000" / "prompt.txt").write_text(" ".join(["zorblax"] * 60000))
    r, text = _cli("eval", "--data", tmp_path / "long", "--steps", 2)
    assert r.exit_code == 2 and "60000 words" in text and "at most 24" in text, text[:500]
    assert len(r.output) < 2000, len(r.output)  # was 480 KB
    assert "characters" in text and "Traceback" not in r.output


def test_shorten_keeps_short_text_and_elides_the_middle_of_long_values():
    from steplens.io.checks import shorten

    assert shorten("--steps 0: must be >= 1") == "--steps 0: must be >= 1"
    long = "x" * 10_000
    s = shorten(f"error: value {long!r} is bad; allowed: a, b")
    assert len(s) < 400 and s.startswith("error: value 'xxx") and s.endswith("is bad; allowed: a, b")
    assert "10,000 characters" in s, s
    huge = " ".join(["word"] * 60000)  # no quotes: the whole message is capped
    assert len(shorten(huge)) <= 2100


# -- store readers name the file and the line of a damaged line

@pytest.mark.parametrize("name", ["rows.jsonl", "rows-00001.jsonl"])
def test_a_damaged_store_line_names_the_file_and_line(tmp_path, name):
    from steplens.io.store import ResultsStore

    store = tmp_path / "store"
    store.mkdir()
    (store / name).write_text('{"condition": "a", "sample": "s0"}\n{"condition": "a", "sam\n')
    with pytest.raises(ValueError) as e:
        ResultsStore(store, ("condition", "sample"))
    msg = str(e.value)
    assert str(store / name) in msg and "line 2" in msg and "delete" in msg, msg
    (store / name).write_text('{"condition": "a", "sample": "s0"}\n[1, 2]\n')  # JSON, but not a row
    with pytest.raises(ValueError, match="line 2"):
        ResultsStore(store, ("condition", "sample"))
    (store / name).write_bytes(b'{"condition": "a", "sample": "s0"}\n\xff\xfe\n')
    with pytest.raises(ValueError, match="line 2"):
        ResultsStore(store, ("condition", "sample"))


def test_a_damaged_store_config_names_the_file(tmp_path):
    from steplens.io.store import ResultsStore

    (tmp_path / "store_config.json").write_text("{not json")
    with pytest.raises(ValueError, match="store_config.json"):
        ResultsStore(tmp_path, ("condition", "sample"), config={"a": 1})


def test_a_probe_resumed_on_a_damaged_rows_file_names_it(tmp_path):
    out = tmp_path / "energy"
    cmd = ["probe", "energy", "--count", 1, "--size", 3, "--frames", 2, "--steps", 2, "--out", out]
    r, text = _cli(*cmd)
    assert r.exit_code == 0, text
    rows = out / "store" / "rows.jsonl"
    rows.write_text(rows.read_text()[:-40] + "\n")  # the last line cut short
    r, text = _cli(*cmd)
    assert r.exit_code == 2 and str(rows) in text and "line" in text and "Traceback" not in r.output, text


# -- scorer plug-ins' outputs are checked: a Score with a finite score in [0, 1]; the plug-in named

class _Bad:
    threshold = None

    def __init__(self, name, value):
        self.name, self.value = name, value

    def score(self, video, sample):
        from steplens.tasks import Score

        if self.value == "raise":
            raise KeyError("boom")
        if self.value == "dict":
            return {"score": 1.0}
        return Score(score=self.value, success=True)


@pytest.fixture
def bad_scorers(monkeypatch):
    import steplens.tasks.registry as reg

    reg._load()
    for name, value in (("nan-judge", float("nan")), ("inf-judge", float("inf")), ("big-judge", 1.5),
                        ("neg-judge", -0.1), ("dict-judge", "dict"), ("raising-judge", "raise"),
                        ("str-judge", "high")):
        monkeypatch.setitem(reg._SCORERS, name, lambda threshold=None, n=name, v=value: _Bad(n, v))


@pytest.mark.parametrize("name, must", [("nan-judge", "nan"), ("inf-judge", "inf"), ("big-judge", "1.5"),
                                        ("neg-judge", "-0.1"), ("dict-judge", "not a Score"),
                                        ("raising-judge", "KeyError"), ("str-judge", "'high'")])
def test_a_scorer_plugins_bad_output_is_refused_naming_the_plugin(name, must, bad_scorers, data, tmp_path):
    out = tmp_path / "run"
    r, text = _cli("eval", "--data", data, "--steps", 2, "--scorer", name, "--out", out)
    assert r.exit_code == 2, text
    assert f"scorer {name!r}" in text and must in text and "[0, 1]" in text, text
    assert "Traceback" not in r.output and not (out / "results.json").exists()


# -- huge counts, particles and budgets: refused before any work against a stated maximum, naming the option

G = ["--size", 3, "--frames", 2, "--steps", 2]  # generated samples
HUGE = (
    (["eval", "--count", 1_000_000_000, *G], "--count 1000000000", "at most 100000"),
    (["eval", "--search", "best-of-n", "--particles", 100_000_000, "--count", 1, *G], "--particles 100000000",
     "at most 1024"),
    (["run", "--search", "best-of-n", "--particles", 100_000_000, "--data", "{data}", "--out", "{out}", "--steps", 2],
     "--particles 100000000", "at most 1024"),
    (["compare", "--budget", 1_000_000, "--count", 1, "--out", "{out}", *G], "--budget 1000000", "at most 1024"),
    (["compare", "--n-seeds", 1_000_000, "--count", 1, "--out", "{out}", *G], "--n-seeds 1000000", "at most 1024"),
    (["probe", "energy", "--count", 1_000_000_000, "--out", "{out}", *G], "--count 1000000000", "at most 100000"),
    (["tasks", "generate", "--count", 1_000_000_000, "--out", "{out}"], "--count 1000000000", "at most 100000"),
)


@pytest.mark.parametrize("args, option, limit", HUGE, ids=[" ".join(map(str, a[:3])) for a, *_ in HUGE])
def test_huge_counts_are_refused_before_any_work(args, option, limit, data, tmp_path, loads):
    out = tmp_path / "out"
    t0 = time.time()
    r, text = _cli(*[str(a).format(data=data, out=out) for a in args])
    assert r.exit_code == 2 and option in text and limit in text, text
    assert time.time() - t0 < 10 and loads == [] and not out.exists(), (loads, text)


# -- a bad --train-log: a clear error naming the file and line, before the model loads

@pytest.mark.parametrize("content, must", [
    (b"\x89PNG\r\n\x1a\n\x00\x00", "not text"),
    (b'{"step": "ten", "eval_solve_rate": 0.5}\n', "line 1"),
    (b'{"step": 10, "eval_solve_rate": "high"}\n', "line 1"),
    (b'{"step": 10, "sec_per_step": null, "eval_solve_rate": 0.5}\n', "line 1"),
    (b'[1, 2, 3]\n', "line 1")])
def test_a_bad_train_log_is_a_clear_error_before_the_model_loads(content, must, tmp_path, loads):
    log = tmp_path / "log.jsonl"
    log.write_bytes(content)
    r, text = _cli("study", "--train-log", log, "--count", 1, "--probe-count", 1, "--steps", 2, "--parts", "solve",
                   "--out", tmp_path / "study")
    assert r.exit_code == 2 and str(log) in text and must in text, text
    assert "Traceback" not in r.output and loads == [], (loads, text)


# -- the shipped weights are checked against the hash recorded for them

def test_the_shipped_weights_match_their_recorded_hashes():
    from steplens.io.files import sha256_file
    from steplens.models.load import SHIPPED, WEIGHTS_DIR

    recorded = json.loads((WEIGHTS_DIR / "sha256.json").read_text())
    assert sorted(recorded) == sorted(SHIPPED.values())
    for name, digest in recorded.items():
        assert sha256_file(WEIGHTS_DIR / name) == digest, name


def test_a_damaged_shipped_payload_is_named_at_load(tmp_path, monkeypatch):
    import shutil

    import steplens.models.load as model_load

    for name in ("tiny-maze.safetensors", "sha256.json"):
        shutil.copy(model_load.WEIGHTS_DIR / name, tmp_path / name)
    b = bytearray((tmp_path / "tiny-maze.safetensors").read_bytes())
    b[-11] ^= 0x20  # one bit of one float16 weight
    (tmp_path / "tiny-maze.safetensors").write_bytes(bytes(b))
    monkeypatch.setattr(model_load, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(ValueError) as e:
        model_load.load_model("tiny-maze")
    msg = str(e.value)
    assert "tiny-maze.safetensors" in msg and "damaged" in msg and "sha256" in msg and "reinstall" in msg, msg
    r, text = _cli("eval", "--count", 1, "--size", 3, "--frames", 2, "--steps", 2)
    assert r.exit_code == 2 and "damaged" in text and "Traceback" not in r.output, text


# -- a call size the transformer cannot place (its rotary table's length) refused before the pipeline loads

@pytest.mark.wan
def test_a_wan_width_beyond_its_rotary_table_is_refused_before_loading(tmp_path, loads):
    pytest.importorskip("diffusers")
    from steplens.backends.wan.tiny import tiny_wan22_i2v

    pipe = tiny_wan22_i2v(seed=0)
    pipe.save_pretrained(tmp_path / "wan22")
    longest = pipe.transformer.config.rope_max_seq_len * 8 * pipe.transformer.config.patch_size[2]
    model = f"wan:{tmp_path / 'wan22'}"
    r, text = _cli("eval", "--model", model, "--count", 1, "--size", 3, "--frames", 2, "--steps", 2,
                   "--height", 16, "--width", 4096)
    assert r.exit_code == 2 and "--width 4096" in text and f"at most {longest}" in text, text
    assert "rope_max_seq_len" in text and "Traceback" not in r.output and loads == [], (loads, text)
    r, text = _cli("eval", "--model", model, "--count", 1, "--size", 3, "--frames", 2, "--steps", 2,
                   "--height", 16, "--width", longest)  # the longest it takes runs
    assert r.exit_code == 0, text


# -- `accelerate launch --num_processes 2 --cpu` starts one process (accelerate's simple launcher): detected, said

def test_accelerates_cpu_launch_of_several_processes_is_refused(monkeypatch, loads):
    """The environment accelerate's simple launcher gives the one process it starts for --cpu --num_processes 2:
    ACCELERATE_USE_CPU and MASTER_ADDR/PORT, no WORLD_SIZE (accelerate/utils/launch.py)."""
    monkeypatch.setenv("ACCELERATE_USE_CPU", "True")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29500")
    for v in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(v, raising=False)
    r, text = _cli("eval", "--count", 1, "--size", 3, "--frames", 2, "--steps", 2)
    assert r.exit_code == 2 and "accelerate launch --cpu" in text and "torchrun --nproc_per_node" in text, text
    assert loads == [] and "Traceback" not in r.output
    monkeypatch.delenv("MASTER_ADDR")  # --num_processes 1 --cpu: one process asked, one run
    r, text = _cli("eval", "--count", 1, "--size", 3, "--frames", 2, "--steps", 2)
    assert r.exit_code == 0, text


# -- what the fuzz harness (tests/test_fuzz_options.py) found: each refused before any model loads, naming the option
FOUND = (
    (["eval", "--task", ""], ["'--task'", "empty value ''"]),
    (["eval", "--out="], ["'--out'", "empty value ''"]),  # typer took '' as the current folder
    (["probe", "", "--out", "{out}"], ["empty value ''"]),
    (["eval", "--seed", 2 ** 63], ["'--seed'", "beyond 64 bits"]),
    (["eval", "--batch", 2 ** 63], ["'--batch'", "beyond 64 bits"]),
    (["eval", "--seed", -1], ["--seed -1", ">= 0"]),
    (["eval", "--size", 65], ["--size 65", "<= 64"]),
    (["eval", "--frames", 5000], ["--frames 5000", "<= 1024"]),
    (["eval", "--size", 1], ["maze size must be an integer from 3 to 9 cells, got 1"]),  # the task's own rule
    (["compare", "--data", "{root}/missing", "--out", "{out}"], ["--data", "data folder not found"]),
    (["eval", "--data", "{data}", "--size", 3], ["--size 3 applies to generated samples"]),
    (["eval", "--negative-prompt", "blurry"], ["--negative-prompt apply to diffusers:PATH pipelines"]),
    (["eval", "--lora", "{data}/maze/00000/prompt.txt"], ["--lora", "LoRAs apply to diffusers:PATH pipelines"]),
    (["run", "--data", "{data}", "--out", "{out}", "--ens-target", "x"], ["--ens-target without --ensemble"]),
    (["run", "--data", "{data}", "--out", "{out}", "--ensemble", 2, "--select", "x"], ["--select: unknown selection rule 'x'", "first"]),
    (["demo", "--task", ",", "--out", "{out}"], ["--task ','", "names no task"]),
    (["study", "--baseline", "nonesuch", "--out", "{out}"], ["--baseline 'nonesuch'", "unknown model"]),
    (["study", "--tasks", ",", "--out", "{out}"], ["--tasks ','", "names no task"]),
    (["trace", "--sample", "{root}/missing", "--out", "{out}"], ["--sample", "not a sample folder"]),
    (["trace", "--data", "{root}/missing", "--out", "{out}"], ["--data", "data folder not found"]),
)


@pytest.mark.parametrize("args, must", FOUND, ids=[" ".join(map(str, a)) for a, _ in FOUND])
def test_what_the_fuzz_harness_found_is_refused_before_loading(args, must, data, tmp_path, loads):
    out = tmp_path / "out"
    fill = {"data": data, "root": tmp_path, "out": out}
    r, text = _cli(*[str(a).format(**fill) for a in args], "--steps", 2)
    assert r.exit_code == 2 and all(m in text for m in must), text
    assert "Traceback" not in r.output and loads == [] and not out.exists(), (loads, text)
