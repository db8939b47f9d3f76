"""Option bundles (issue 33 item 3): no command function takes more than 12 parameters (a bundle counts as one), the
sample, score, search, ensemble and plan options are declared once (one help text everywhere a command takes them,
listed in the bundle's --help panel), and a command's part of a bundle keeps its own defaults."""

import inspect
from dataclasses import fields

import pytest
import typer
from typer.testing import CliRunner

from builders import app_commands
from steplens.cli import app
from steplens.cli.inputs import SampleOptions, ScoreOptions
from steplens.cli.options import EngineOptions, ModelOptions, SamplingOptions, SearchOptions, part
from steplens.cli.run_options import EnsembleOptions, PlanOptions

MAX_PARAMETERS = 12
SHARED = (ModelOptions, SamplingOptions, EngineOptions, SearchOptions, SampleOptions, ScoreOptions, EnsembleOptions,
          PlanOptions)
OWN = {("train",): {"--device", "--steps"}}  # train's device and training steps: not a model's, nor its sampling


def _functions(t: typer.Typer, path=()):
    """(command words, the Python function registered) of every command, groups walked."""
    for c in t.registered_commands:
        yield path + (c.name or c.callback.__name__,), inspect.unwrap(c.callback)
    for g in t.registered_groups:
        yield from _functions(g.typer_instance, path + (g.name,))




def test_no_command_function_takes_more_than_12_parameters():
    widths = {" ".join(words): len(inspect.signature(fn).parameters) for words, fn in _functions(app)}
    assert {"probe", "compare", "study", "run", "eval", "tasks generate"} <= set(widths)
    wide = {name: n for name, n in widths.items() if n > MAX_PARAMETERS}
    assert not wide, f"command functions over {MAX_PARAMETERS} parameters (bundle their options): {wide}"


def test_a_bundle_counts_as_one_parameter():
    """The widest command's options are many more than its parameters: the bundles are what keeps it narrow."""
    fn = dict(_functions(app))[("compare",)]
    click = app_commands()[("compare",)]
    assert len(inspect.signature(fn).parameters) <= MAX_PARAMETERS < len(click.params)


@pytest.mark.parametrize("cls", SHARED, ids=lambda c: c.__name__)
def test_every_command_takes_a_bundles_options_from_the_bundle(cls):
    """Wherever a command takes one of the bundle's options, it is the bundle's: the same help text, in the bundle's
    --help panel (a command re-declaring --seed or --verifier with its own help fails here)."""
    declared = {f.metadata["option"].param_decls[0]: f.metadata["option"].help for f in fields(cls)}
    takers = set()
    for words, cmd in app_commands().items():
        for p in cmd.params:
            name = p.opts[0] if p.opts else None
            if name in declared and name not in OWN.get(words, ()):
                takers.add(" ".join(words))
                assert p.help == declared[name], (words, name, p.help)
                assert p.rich_help_panel == cls.PANEL, (words, name, p.rich_help_panel)
    assert takers, cls.__name__


def test_the_sample_options_are_the_bundles_in_every_command_that_reads_or_makes_samples():
    takers = {" ".join(w) for w, cmd in app_commands().items() if any("--seed" in p.opts for p in cmd.params)}
    assert takers == {"run", "eval", "trace", "demo", "probe", "compare", "study", "tasks generate"}


def test_a_commands_part_keeps_its_own_defaults():
    """One help text, the command's own default: run needs --data, study counts 500, tasks generate draws the test
    part; eval generates the default task, probe leaves it to the probe."""
    cmds = app_commands()

    def param(words, name):
        return next(p for p in cmds[words].params if name in p.opts)

    assert param(("run",), "--data").required and not param(("eval",), "--data").required
    assert param(("study",), "--count").default == 500 and param(("eval",), "--count").default is None
    assert param(("tasks", "generate"), "--split").default == "test" and param(("eval",), "--split").default is None
    assert param(("eval",), "--task").default == "maze" and param(("probe",), "--task").default is None
    assert not any("--scorer" in p.opts for p in cmds[("run",)].params)  # only the options a command takes
    assert not any("--vbvr-pro-source" in p.opts for p in cmds[("eval",)].params)


def test_probe_help_lists_each_bundle_in_its_own_panel():
    r = CliRunner().invoke(app, ["probe", "--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    panels = [line.strip("╭─ ").split(" ")[0] for line in r.output.splitlines() if line.startswith("╭─")]
    assert panels == ["Arguments", "Options", "Model", "Sampling", "Engine", "Samples", "Scoring", "Probe", "Plan"]


def test_a_part_names_only_the_bundles_options():
    with pytest.raises(TypeError, match="no option"):
        part(SampleOptions, "data", "nope")
    with pytest.raises(TypeError, match="no option"):
        part(SampleOptions, "data", count=3)  # a default for an option the part does not take


@pytest.mark.parametrize("command", [["demo"], ["tasks", "generate", "maze"]], ids=" ".join)
def test_a_seed_out_of_range_is_refused_by_every_command_that_takes_one(tmp_path, command):
    """Found while bundling the sample options: demo and tasks generate took --seed -1 (a sample named maze/-0001,
    its report written) where every other command refuses it; the bundle's check refuses it for all, before any
    model loads or anything is written."""
    r = CliRunner().invoke(app, [*command, "--count", "1", "--seed", "-1", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2, r.output
    assert "--seed -1: must be >= 0" in " ".join(r.output.split()), r.output
    assert not (tmp_path / "o").exists()
