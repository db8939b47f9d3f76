"""A fuzz harness over every command's options and the plug-ins' outputs (issue 31, item 7): property-based tests
(hypothesis, seeded: derandomize=True, a fixed small example budget, so a run is the same run every time and takes
about a minute) that give each option of each command, enumerated from the typer app (an option added tomorrow is
covered the day it lands), a value bad for its type (not a number, NaN, inf, beyond int64, empty, unicode, a
5,000-character string, a path under a file, a missing input), and scorer plug-ins bad answers.

Each case must end with exit 2 and one clear error line that names the option (or quotes the value), no traceback,
a message of bounded length, nothing written to --out, within a time bound, and never a model load: the loader
fails loudly (ModelLoadAttempted) if a command gets that far, so a bad option let through to the load is caught
without loading anything. Each command's base invocation is checked first to reach the load (or to succeed, for
commands that load no model), so a refusal is the fuzzed option's doing.
"""

import json
import math
import shutil
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from builders import app_commands
from steplens.cli import app
from steplens.tasks import get_task, write_sample

CASES = 3  # examples per option: with derandomize, the same values every run
TIME_BOUND = 20.0  # seconds a refusal may take (most take well under one)
FUZZ = settings(max_examples=CASES, derandomize=True, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))


class ModelLoadAttempted(Exception):
    """A command reached the model loader: a bad option was let through to the load."""




COMMANDS = app_commands()
# a valid, cheap invocation of each command ({X}: the fixture's paths); every other option at its default
BASES = {
    ("run",): ["--data", "{data}", "--out", "{out}", "--steps", "2"],
    ("score",): ["--data", "{data}", "--outputs", "{outputs}"],
    ("eval",): ["--count", "1", "--size", "3", "--frames", "2", "--steps", "2"],
    ("trace",): ["--out", "{out}", "--size", "3", "--frames", "2", "--steps", "2"],
    ("demo",): ["--out", "{out}", "--count", "1", "--size", "3"],
    ("probe",): ["energy", "--out", "{out}", "--count", "1", "--size", "3", "--frames", "2", "--steps", "2"],
    ("compare",): ["--out", "{out}", "--count", "1", "--size", "3", "--frames", "2", "--steps", "2"],
    ("study",): ["--out", "{out}", "--count", "1", "--probe-count", "1", "--steps", "2", "--parts", "solve"],
    ("report",): ["{runs}"],
    ("train",): ["--out", "{out}", "--config", "{config}"],
    ("export",): ["--checkpoint", "{ckpt}", "--out", "{out}/w.safetensors"],
    ("tasks", "generate"): ["maze", "--count", "1", "--size", "3", "--out", "{out}"],
    ("tasks", "list"): [],
    ("verifiers",): [],
}
LOADS_A_MODEL = {("run",), ("eval",), ("trace",), ("demo",), ("probe",), ("compare",), ("study",)}
INPUTS = {"--data", "--outputs", "--config", "--checkpoint", "--train-log", "runs"}  # paths that must exist
FREE_TEXT = {"--command"}  # any text is a valid value (export's record of the training command): nothing to refuse


def _params():
    """(command words, option name, kind) for every option and argument that takes a value."""
    out = []
    for path, cmd in COMMANDS.items():
        for p in cmd.params:
            if getattr(p, "is_flag", False) or (p.opts and p.opts[0] in FREE_TEXT):
                continue  # a flag takes no value; free text has no bad value
            ann = str(p.type_descriptor.annotation)
            kind = ("path" if "Path" in ann else "int" if "int" in ann else "float" if "float" in ann else "str")
            out.append((path, p.opts[0] if p.opts else p.name, kind))
    return out


PARAMS = _params()


def test_every_command_has_a_base_and_every_option_is_fuzzed():
    """A command added without a base here fails this test (its options would go unfuzzed)."""
    assert set(COMMANDS) == set(BASES), set(COMMANDS) ^ set(BASES)
    assert len(PARAMS) > 200, len(PARAMS)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    for i in range(2):
        write_sample(root / "data", get_task("maze").sample(i, 3, 3, idx=i), scale=2)
    (root / "afile").write_text("a file, not a folder\n")
    r = CliRunner().invoke(app, ["run", "--data", str(root / "data"), "--out", str(root / "outputs"), "--steps", "2"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["trace", "--out", str(root / "runs" / "trace"), "--size", "3", "--frames", "2",
                                 "--steps", "2"])
    assert r.exit_code == 0, r.output
    (root / "config.json").write_text(json.dumps({"arch": "test", "batch": 2, "steps": 1, "sizes": {"3": 1.0},
                                                 "frames": {"2": 1.0}, "eval_every": 0, "ckpt_every": 1}))
    r = CliRunner().invoke(app, ["train", "--out", str(root / "run"), "--config", str(root / "config.json")])
    assert r.exit_code == 0, r.output
    return {"root": root, "data": root / "data", "outputs": root / "outputs", "runs": root / "runs",
            "config": root / "config.json", "ckpt": root / "run" / "checkpoint.safetensors", "afile": root / "afile"}


@pytest.fixture
def no_load(monkeypatch):
    """The model loader fails loudly for any model it would load; a spec it refuses (unknown, missing) it still
    refuses itself (that is the check, and it loads nothing)."""
    import steplens.models.load as model_load

    real = model_load.load_model

    def refuse_to_load(spec, *a, **kw):
        s = str(spec)
        folder = s.split(":", 1)[1] if s.startswith(("wan:", "diffusers:")) else None
        if s in model_load.SHIPPED or (folder is None and Path(s).is_file()) or (folder and Path(folder).is_dir()):
            raise ModelLoadAttempted(s)
        return real(spec, *a, **kw)

    monkeypatch.setattr(model_load, "load_model", refuse_to_load)


def _args(path, world, out, extra=()):
    fill = {**{k: str(v) for k, v in world.items()}, "out": str(out)}
    return [*path, *[a.format(**fill) for a in BASES[path]], *extra]


def _invoke(args):
    t0 = time.time()
    r = CliRunner().invoke(app, [str(a) for a in args])
    return r, time.time() - t0


@pytest.mark.parametrize("path", sorted(BASES), ids=[" ".join(p) for p in sorted(BASES)])
def test_each_base_reaches_the_model_load_or_succeeds(path, world, no_load, tmp_path):
    r, _ = _invoke(_args(path, world, tmp_path / "out"))
    if path in LOADS_A_MODEL:
        assert isinstance(r.exception, ModelLoadAttempted), r.output
    else:
        assert r.exit_code == 0, r.output


def _bad_values(kind: str, option: str, world) -> st.SearchStrategy:
    afile = str(world["afile"])
    text = st.sampled_from(["", " ", ",", "\u2603\U0001F600", "x" * 5000, "-1", "nan", "../../../etc/passwd",
                            "a,,b", "\u202e\u0000"[:1]])
    if kind == "int":
        return st.one_of(st.sampled_from(["abc", "1.5", "", "nan", "1e3", "\u2603"]),
                         st.integers(min_value=2 ** 63, max_value=10 ** 30).map(str),
                         st.integers(max_value=-(2 ** 63), min_value=-(10 ** 30)).map(str))
    if kind == "float":
        return st.sampled_from(["nan", "inf", "-inf", "1e400", "-1e400", "abc", "", "1,5", "\u2603"])
    if kind == "path":
        under_file = st.sampled_from([f"{afile}/x", f"{afile}/\u2603/y"])
        missing = st.just(f"{world['root']}/missing-\u2603")
        return st.one_of(under_file, missing) if option in INPUTS else under_file
    return text


def _names_it(option: str, value: str, text: str) -> bool:
    """The error names the option, or quotes the value (shortened if long)."""
    words = {option, option.upper(), f"'{option}'"}
    if any(w in text for w in words):
        return True
    short = value[:40]
    return bool(short.strip()) and (repr(short)[:-1] in text or short in text)


@pytest.mark.parametrize("path, option, kind", PARAMS, ids=[f"{' '.join(p)} {o}" for p, o, _ in PARAMS])
@FUZZ
@given(data=st.data())
def test_a_bad_value_of_any_option_is_refused_clearly(path, option, kind, data, world, no_load, tmp_path_factory):
    value = data.draw(_bad_values(kind, option, world), label=option)
    out = tmp_path_factory.mktemp("out") / "out"
    base = _args(path, world, out)
    if option.startswith("-"):
        if option in base:  # the base's own value replaced
            i = base.index(option)
            base = base[:i] + base[i + 2:]
        args = [*base, option, value]
    else:  # an argument: the base's first word after the command words
        args = [*path, value, *base[len(path) + 1:]]
    r, took = _invoke(args)
    said = " ".join(r.output.split())
    case = f"{' '.join(args)[:300]} -> rc {r.exit_code}: {said[:400]}"
    assert not isinstance(r.exception, ModelLoadAttempted), f"a model load for a bad option: {case}"
    assert r.exception is None or isinstance(r.exception, SystemExit), f"traceback ({r.exception!r}): {case}"
    assert r.exit_code == 2, case
    assert "Traceback" not in r.output and len(r.output) < 5000, case
    assert _names_it(option, value, said), f"the error names neither {option} nor the value: {case}"
    assert not out.exists() or not any(out.iterdir()), f"wrote into --out: {case}"
    assert took < TIME_BOUND, f"{took:.1f} s: {case}"


# -- conflicting pairs: each value fine alone, the pair refused (naming both options)
CONFLICTS = (
    (("eval",), ["--data", "{data}", "--size", "3"], ("--size", "--data")),
    (("eval",), ["--sigmas", "1,0.5", "--steps", "3"], ("--sigmas", "--steps")),
    (("eval",), ["--particles", "8"], ("--particles", "--search")),
    (("eval",), ["--search", "best-of-n", "--method", "vote"], ("--search", "--method")),
    (("eval",), ["--tasks", "maze"], ("--tasks", "--data")),  # generated samples: --split names a part of the inputs
    (("compare",), ["--verifier", "consensus"], ("--verifier", "--budget")),
    (("probe",), ["--frame-noise", "every-step"], ("--frame-noise", "noise")),
    (("probe",), ["--engine", "torchrun", "--workers", "3"], ("--workers", "torchrun")),
    (("study",), ["--split", "In-Domain_50"], ("--split", "--data")),
    (("trace",), ["--negative-prompt", "blurry"], ("--negative-prompt", "diffusers:PATH")),
)


@pytest.mark.parametrize("case", CONFLICTS, ids=[" ".join([*p, *e]) for p, e, _ in CONFLICTS])
def test_a_conflicting_pair_is_refused_naming_both(case, world, no_load, tmp_path_factory):
    path, extra, names = case
    out = tmp_path_factory.mktemp("out") / "out"
    fill = {k: str(v) for k, v in world.items()}
    r, took = _invoke(_args(path, world, out, [a.format(**fill) for a in extra]))
    said = " ".join(r.output.split())
    assert not isinstance(r.exception, ModelLoadAttempted), f"a model load for a conflicting pair: {case}"
    assert r.exit_code == 2 and all(n in said for n in names), (case, said[-500:])
    assert not out.exists() or not any(out.iterdir()), case


# -- plug-in outputs: a scorer answering anything but a Score with a finite score in [0, 1] is refused by name

class _Answers:
    threshold = None

    def __init__(self, answer):
        self.name, self.answer = "fuzzed-judge", answer

    def score(self, video, sample):
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def _bad_answers():
    from steplens.tasks import Score

    bad_score = st.one_of(st.sampled_from([math.nan, math.inf, -math.inf]),
                          st.floats(min_value=1.0, exclude_min=True, allow_infinity=False),
                          st.floats(max_value=0.0, exclude_max=True, allow_infinity=False),
                          st.text(max_size=5), st.none())
    return st.one_of(bad_score.map(lambda v: Score(score=v, success=True)),
                     st.one_of(st.none(), st.floats(0, 1), st.text(max_size=5),
                               st.dictionaries(st.text(max_size=3), st.floats(0, 1), max_size=2)),
                     st.sampled_from([KeyError("k"), TypeError("t"), ZeroDivisionError("z"), RuntimeError("r")]))


@FUZZ
@given(answer=_bad_answers())
def test_a_scorer_plugins_bad_answer_is_refused_naming_it(answer, world, monkeypatch, tmp_path_factory):
    import steplens.tasks.registry as reg

    reg._load()
    monkeypatch.setitem(reg._SCORERS, "fuzzed-judge", lambda threshold=None: _Answers(answer))
    out = tmp_path_factory.mktemp("out") / "eval"
    r, took = _invoke(["eval", "--data", world["data"], "--steps", 2, "--scorer", "fuzzed-judge", "--out", out])
    said = " ".join(r.output.split())
    assert r.exit_code == 2 and "scorer 'fuzzed-judge'" in said and "[0, 1]" in said, (answer, said[-500:])
    assert r.exception is None or isinstance(r.exception, SystemExit), (answer, r.exception)
    assert not (out / "results.json").exists() and took < TIME_BOUND
