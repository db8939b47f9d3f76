"""The model and sampling options, declared once (steplens.cli.options): every command that takes --model shows
the same options with the same help, and passes them through (study included)."""

from dataclasses import fields

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from steplens.cli import app
from steplens.cli.options import ModelOptions, SamplingOptions

MODEL_COMMANDS = {"run", "eval", "trace", "probe", "compare", "study", "demo"}
BUNDLE_OPTIONS = [f.metadata["option"] for cls in (ModelOptions, SamplingOptions) for f in fields(cls)]
NAMES = [o.param_decls[0] for o in BUNDLE_OPTIONS]  # --model, --device, ..., --negative-prompt


def _help_rows(command: str) -> dict[str, str]:
    """{option: its --help row, whitespace collapsed} for the bundles' options, read from the rendered help."""
    r = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "1000"})
    assert r.exit_code == 0, r.output
    rows = {}
    for line in r.output.splitlines():
        words = " ".join(line.strip("│ ").split()).split(" ")
        if words and words[0] in NAMES:
            rows[words[0]] = " ".join(words)
    return rows


def test_every_command_that_runs_a_model_takes_the_bundles():
    group = get_command(app)
    takes_model = {name for name, cmd in group.commands.items()
                   if any("--model" in p.opts for p in getattr(cmd, "params", []))}
    assert takes_model == MODEL_COMMANDS
    for name in MODEL_COMMANDS:
        opts = {o for p in group.commands[name].params for o in p.opts}
        assert set(NAMES) <= opts, (name, set(NAMES) - opts)


def test_every_model_command_shows_the_same_model_and_sampling_options_in_its_help():
    seen = {name: _help_rows(name) for name in sorted(MODEL_COMMANDS)}
    first = seen["eval"]
    assert list(first) == NAMES  # all of them, in the bundles' order
    for o in BUNDLE_OPTIONS:  # each row carries the help text declared once
        assert o.help in first[o.param_decls[0]], (o.param_decls[0], first[o.param_decls[0]])
    for name, rows in seen.items():
        assert rows == first, (name, {k: (rows.get(k), first[k]) for k in first if rows.get(k) != first[k]})


@pytest.mark.parametrize("args, message", [
    (("--dtype", "bfloat16"), "runs in float32; --dtype bfloat16 applies to diffusers:PATH pipelines"),
    (("--offload", "model"), "--offload model applies to diffusers:PATH pipelines"),
    (("--lora", "{lora}"), "LoRAs apply to diffusers:PATH pipelines"),
    (("--preset", "vbvr"), "--preset vbvr is the study's sampling of VBVR-Wan2.2"),
    (("--negative-prompt", "x"), "--negative-prompt apply to diffusers:PATH pipelines"),
    (("--height", "32"), "--height and --width go together"),
    (("--lora-2", "{none}"), "LoRA file not found"),
    (("--dtype", "float64"), "unknown dtype 'float64'; allowed: float32, bfloat16, float16"),
])
def test_study_passes_every_model_option_through(tmp_path, args, message):
    """The study once loaded float32, no offload, no preset, no LoRA whatever was asked; each option now reaches the
    model (here refused by the embedded model, which names it), before anything is written."""
    lora = tmp_path / "l.safetensors"
    lora.write_bytes(b"")
    args = [a.format(lora=lora, none=tmp_path / "none.safetensors") for a in args]
    r = CliRunner().invoke(app, ["study", "--model", "tiny-maze", "--count", "1", "--out", str(tmp_path / "s"), *args])
    assert r.exit_code == 2 and message in " ".join(r.output.split()), r.output
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("command", ["run", "eval"])
def test_the_search_help_names_every_search_method(command):
    """A new user read `--search best-of-n | early-beam | smc | chain` in --help, while backtrack was a method too
    (steplens.methods.search.METHODS); the option's help now names every method the config accepts."""
    from steplens.methods.search import METHODS

    r = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "1000"})
    assert r.exit_code == 0, r.output
    row = next(" ".join(line.strip("│ ").split()) for line in r.output.splitlines()
               if line.strip("│ ").startswith("--search "))
    assert all(m in row.split(":")[0] for m in METHODS), row
