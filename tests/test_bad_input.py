"""A battery of bad inputs over every command and the Python API: each gets a clear error (exit 2 on the command
line) naming the bad value or option, never a traceback and never a silent reinterpretation."""

import json
import math
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

from steplens.cli import app
from steplens.tasks import get_task, write_sample

SAMPLER = ("--steps", "--shift", "--guidance", "--device")


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    data = root / "data"
    for i in range(2):
        write_sample(data, get_task("maze").sample(i, 3, 3, idx=i), scale=2)
    two = root / "two"
    for i in range(2):
        write_sample(two, get_task("maze-two-goals").sample(i, 3, 3, idx=i), scale=2)
    vbvr = root / "vbvr"
    write_sample(vbvr, get_task("maze").sample(0, 3, 3, idx=0), scale=2, metadata=False,
                 rel="In-Domain_50/O-39_maze_data-generator/00000")
    (root / "empty").mkdir()
    (root / "afile").write_text("not a folder\n")
    (root / "corrupt.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage" * 4)
    from steplens.models import VideoDiT, get_arch
    from steplens.models.weights import save_weights

    net = VideoDiT(get_arch("test"))
    save_weights(root / "flipped.safetensors", net, net.cfg.to_dict())
    b = bytearray((root / "flipped.safetensors").read_bytes())
    b[-7] ^= 0x55  # one damaged byte in the tensor data
    (root / "flipped.safetensors").write_bytes(bytes(b))
    (root / "bad.json").write_text("{not json")
    (root / "unknown_key.json").write_text(json.dumps({"arch": "test", "stepz": 3}))
    (root / "batch0.json").write_text(json.dumps({"arch": "test", "batch": 0}))
    (root / "task.json").write_text(json.dumps({"arch": "test", "tasks": {"sokoban": 1.0}}))
    (root / "arch.json").write_text(json.dumps({"arch": "huge"}))
    (root / "lr.json").write_text('{"arch": "test", "lr": NaN}')
    (root / "path_weight.json").write_text(json.dumps({"arch": "test", "path_weight": -3}))
    (root / "frames1.json").write_text(json.dumps({"arch": "test", "frames": {"1": 1.0}}))
    (root / "cfg.json").write_text(json.dumps({"arch": "test", "batch": 2, "steps": 1, "sizes": {"3": 1.0},
                                               "frames": {"2": 1.0}, "eval_every": 0, "ckpt_every": 1}))
    for name in ("latin1", "jpeg", "badgt"):  # damaged folders as users hold them (issue 22's battery)
        write_sample(root / name, get_task("maze").sample(0, 3, 3, idx=0), scale=2)
    (root / "latin1" / "maze" / "00000" / "prompt.txt").write_bytes("caf\xe9".encode("latin-1"))
    from PIL import Image

    jpeg = root / "jpeg" / "maze" / "00000" / "first_frame.png"
    Image.open(jpeg).convert("RGB").save(jpeg, format="JPEG")
    (root / "badgt" / "maze" / "00000" / "ground_truth.mp4").write_bytes(
        (root / "badgt" / "maze" / "00000" / "final_frame.png").read_bytes())
    (root / "made").mkdir()  # outputs of another configuration (other weights): a rerun into them is refused
    (root / "made" / "run_config.json").write_text(json.dumps({"model": "tiny-maze", "weights_sha256": "0" * 64}))
    (root / "made-probe" / "store").mkdir(parents=True)
    (root / "made-probe" / "store" / "store_config.json").write_text(json.dumps({"experiment": "energy",
                                                                                 "weights_sha256": "0" * 64}))
    from steplens.training.train import TrainConfig, Trainer

    Trainer(TrainConfig.from_file(root / "cfg.json"), root / "run").run(progress=False)
    return {k: str(v) for k, v in {"data": data, "two": two, "vbvr": vbvr, "empty": root / "empty",
                                   "afile": root / "afile", "corrupt": root / "corrupt.safetensors",
                                   "ckpt": root / "run" / "checkpoint.safetensors", "root": root,
                                   "bad_json": root / "bad.json", "unknown_key": root / "unknown_key.json",
                                   "batch0": root / "batch0.json", "task_json": root / "task.json",
                                   "arch_json": root / "arch.json", "lr_json": root / "lr.json",
                                   "path_weight": root / "path_weight.json", "frames1": root / "frames1.json"}.items()}


def _sampler_cases(cmd, base, guidance=True):
    out = [
        (cmd + base + ["--steps", "0"], ["--steps 0", ">= 1"]),
        (cmd + base + ["--steps", "-3"], ["--steps -3", ">= 1"]),
        (cmd + base + ["--steps", "1000000000000"], ["--steps 1000000000000", "<= 10000"]),
        (cmd + base + ["--steps", "abc"], ["'--steps'", "integer"]),
        (cmd + base + ["--steps", "2.5"], ["'--steps'", "integer"]),
        (cmd + base + ["--shift", "inf"], ["--shift inf", "finite"]),
        (cmd + base + ["--shift", "nan"], ["--shift nan", "finite"]),
        (cmd + base + ["--shift", "0"], ["--shift 0.0", "> 0"]),
        (cmd + base + ["--shift", "-2"], ["--shift -2.0", "> 0"]),
        (cmd + base + ["--shift", "x"], ["'--shift'", "number"]),
        (cmd + base + ["--device", "bogus"], ["--device 'bogus'", "cpu, cuda"]),
        (cmd + base + ["--device", "cuda"], ["--device 'cuda'", "no CUDA GPU"]),
        (cmd + base + ["--device", "cuda:7"], ["--device 'cuda:7'", "no CUDA GPU"]),
        (cmd + base + ["--device", ""], ["'--device'", "empty value ''"]),
        (cmd + base + ["--model", "nonesuch"], ["unknown model 'nonesuch'", "tiny-maze"]),
        (cmd + base + ["--model", "{root}/missing.safetensors"], ["not found", "missing.safetensors"]),
        (cmd + base + ["--model", "{corrupt}"], ["corrupt", "corrupt.safetensors"]),
        (cmd + base + ["--model", "{root}/flipped.safetensors"], ["flipped.safetensors", "is corrupt", "checksum"]),
        (cmd + base + ["--model", "wan:"], ["wan:PATH"]),
        (cmd + base + ["--model", "wan:{root}/nowhere"], ["Wan pipeline folder not found", "nowhere"]),
        (cmd + base + ["--dtype", "float64"], ["dtype 'float64'", "float32"]),
        (cmd + base + ["--offload", "all"], ["--offload all", "none, model, sequential"]),
        (cmd + base + ["--sigmas", "1,0.9,0.95"], ["--sigmas", "σ 0.95", "strictly decreasing"]),
        (cmd + base + ["--sigmas", "1.5,0.5"], ["--sigmas", "σ 1.5", "not in (0, 1]"]),
        (cmd + base + ["--sigmas", "1,0.5,-0.1"], ["--sigmas", "σ -0.1", "not in (0, 1]"]),
        (cmd + base + ["--sigmas", "1,x"], ["--sigmas '1,x'", "'x' is not a number"]),
        (cmd + base + ["--sigmas", "1,0.5", "--steps", "3"], ["--steps 3 and --sigmas 1,0.5 disagree"]),
        (cmd + base + ["--sigmas", "1,0.5", "--shift", "2"], ["--shift 2 and --sigmas 1,0.5 disagree"]),
        (cmd + base + ["--preset", "distilled"], ["--preset distilled", "applies to Wan pipelines",
                                                  "'tiny-maze' (embedded) has presets: pipeline"]),
    ]
    if guidance:
        out += [(cmd + base + ["--guidance", "nan"], ["--guidance nan", "finite"]),
                (cmd + base + ["--guidance", "inf"], ["--guidance inf", "finite"]),
                (cmd + base + ["--guidance", "-1"], ["--guidance -1.0", ">= 0"]),
                (cmd + base + ["--guidance", "1e30"], ["--guidance 1e+30", "<= 100"])]
    return out


def _source_cases(cmd, base, generated=True):
    out = [
        (cmd + base + ["--data", "{root}/nope"], ["data folder not found", "nope"]),
        (cmd + base + ["--data", "{afile}"], ["afile", "is a file"]),
        (cmd + base + ["--data", "{empty}"], ["no samples under", "empty"]),
        (cmd + base + ["--data", "{vbvr}", "--split", "Test_1"], ["--split 'Test_1'", "In-Domain_50"]),
        (cmd + base + ["--data", "{data}", "--split", "In-Domain_50"], ["--split In-Domain_50", "no split folders"]),
        (cmd + base + ["--data", "{data}", "--tasks", "sokoban"], ["--tasks 'sokoban'", "tasks there: maze"]),
        (cmd + base + ["--data", "{data}", "--tasks", ","], ["comma-separated", "','"]),
        (cmd + base + ["--data", "{data}", "--frames", "1"], ["frames must be >= 2", "got 1"]),
        (cmd + base + ["--data", "{data}", "--count", "0"], ["'--count'", "greater than or equal to 1"]),
    ]
    if generated:
        out += [
            (cmd + base + ["--task", "sokoban"], ["unknown task 'sokoban'", "maze, maze-loops, maze-two-goals, reappear, symmetry, symmetry-open, tictactoe"]),
            (cmd + base + ["--size", "2"], ["from 3 to 9 cells", "got 2"]),
            (cmd + base + ["--size", "12"], ["from 3 to 9 cells", "got 12"]),
            (cmd + base + ["--frames", "0"], ["frames must be >= 2", "got 0"]),
            (cmd + base + ["--frames", "-2"], ["frames must be >= 2", "got -2"]),
            (cmd + base + ["--split", "x"], ["--split 'x'", "train, val, test"]),  # generated: a part of the inputs
            (cmd + base + ["--split", "train,test"], ["--split train,test", "one part"]),
            (cmd + base + ["--tasks", "maze"], ["--tasks", "give --data DIR"]),
        ]
    return out


def _score_cases(cmd, base):
    return [
        (cmd + base + ["--scorer", "nonesuch"], ["unknown scorer 'nonesuch'", "maze, maze-shortest, reappear, symmetry, tictactoe, vbvr", "pip install -e ."]),
        (cmd + base + ["--threshold", "1.5"], ["--threshold 1.5", "<= 1"]),
        (cmd + base + ["--threshold", "nan"], ["--threshold nan", "finite"]),
        (cmd + base + ["--threshold", "-0.1"], ["--threshold -0.1", ">= 0"]),
        (cmd + base + ["--scorer", "maze", "--threshold", "0.5"], ["maze scorer is rule-based", "0.5"]),
    ]


def _out_cases(cmd, base, opt="--out"):
    return [(cmd + base + [opt, "{afile}"], [opt, "afile", "is a file"]),
            (cmd + base + [opt, "{afile}/sub"], [opt, "afile", "is a file"])]


RUN = ["run", "--data", "{data}", "--out", "{root}/o-run"]
EVAL = ["eval", "--count", "1"]
TRACE = ["trace", "--out", "{root}/o-trace"]
PROBE = ["probe", "noise", "--count", "1", "--out", "{root}/o-probe"]
COMPARE = ["compare", "--count", "1", "--out", "{root}/o-cmp"]
DEMO = ["demo", "--count", "1", "--out", "{root}/o-demo"]
STUDY = ["study", "--count", "1", "--out", "{root}/o-study"]

CASES = (
    _sampler_cases(["run"], ["--data", "{data}", "--out", "{root}/o-run"])
    + _out_cases(["run"], ["--data", "{data}"])
    + _source_cases(["run"], ["--out", "{root}/o-run"], generated=False)
    + [(RUN + ["--ensemble", "0"], ["n_seeds must be >= 1", "got 0"]),
       (RUN + ["--ensemble", "2", "--select", "best"], ["selection rule 'best'", "first, consensus, all"]),
       (RUN + ["--select", "all"], ["--select without --ensemble"]),
       (RUN + ["--video", "gif"], ["--video 'gif'", "full, latent-frames"]),
       (["run", "--data", "{root}/latin1", "--out", "{root}/o-run"], ["prompt.txt", "not UTF-8", "0xe9"]),
       (["run", "--data", "{root}/jpeg", "--out", "{root}/o-run"], ["first_frame.png", "JPEG image, not a PNG"]),
       (["run", "--data", "{root}/badgt", "--out", "{root}/o-run"], ["ground_truth.mp4", "not a readable video",
                                                                     "PNG image"]),
       (RUN + ["--height", "0", "--width", "32"], ["--height 0", ">= 1"]),
       (RUN + ["--lora", "{root}/none:x.safetensors"], ["none:x.safetensors", "LoRA file not found"]),
       (["run", "--data", "{data}", "--out", "{root}/made", "--steps", "2"],
        ["another configuration", "weights_sha256: saved", "dtype: saved null, given \"float32\"", "another --out"]),
       (["probe", "energy", "--count", "1", "--size", "3", "--steps", "2", "--out", "{root}/made-probe"],
        ["another configuration", "weights_sha256: saved", "size: saved null, given 3", "another --out"]),
       (RUN + ["--ensemble", "2", "--ens-target", "heads"], ["target", "heads"]),
       (RUN + ["--ensemble", "2", "--ens-blocks", "99"], ["--ens-blocks", "block 99 out of range", "0..7"]),
       (RUN + ["--ensemble", "2", "--ens-steps", "20"], ["--ens-steps", "step 20 out of range", "0..19"]),
       (RUN + ["--ensemble", "2", "--ens-blocks", "a"], ["comma-separated integers", "'a'"]),
       (RUN + ["--ensemble", "2", "--ens-steps", ""], ["'--ens-steps'", "empty value ''"]),
       (RUN + ["--ensemble", "2", "--alpha", "nan"], ["--alpha nan", "finite"]),
       (RUN + ["--ensemble", "2", "--alpha", "-1"], ["--alpha -1.0", ">= 0"]),
       (RUN + ["--batch", "0"], ["'--batch'", "greater than or equal to 1"]),
       (RUN + ["--seed", "x"], ["'--seed'", "integer"]),
       (RUN + ["--search", "smc"], ["smc needs resampling steps"]),
       (RUN + ["--search", "smc", "--resample-steps", "a"], ["--resample-steps", "'a'"]),
       (RUN + ["--search", "best-of-n", "--ensemble", "2"], ["--search best-of-n and --ensemble 2"])]
    + _sampler_cases(EVAL, [])
    + _source_cases(EVAL, [])
    + _score_cases(EVAL, [])
    + _out_cases(EVAL, [])
    + [(EVAL + ["--method", "best"], ["unknown method 'best'", "vote"]),
       (EVAL + ["--method", "vote", "--n-seeds", "0"], ["n_seeds must be >= 1", "got 0"]),
       (EVAL + ["--method", "ensemble", "--ens-blocks", "8"], ["block 8 out of range", "0..7"]),
       (EVAL + ["--batch", "0"], ["'--batch'", "greater than or equal to 1"]),
       (EVAL + ["--search", "beam"], ["--search: unknown search method 'beam'", "best-of-n, early-beam, smc, chain"]),
       (EVAL + ["--search", "early-beam", "--particles", "2", "--keep", "3"],
        ["beams wider than the particles", "m = 3 of n = 2"]),
       (EVAL + ["--search", "best-of-n", "--verifier", "nope"], ["--verifier: unknown verifier 'nope'", "consensus",
                                                                 "task"]),
       (EVAL + ["--search", "chain", "--task", "tictactoe"], ["chain needs a task with a continue_from hook",
                                                              "'tictactoe'"]),
       (EVAL + ["--keep", "2"], ["--keep without --search"]),
       (EVAL + ["--search", "best-of-n", "--particles", "0"], ["--particles: n = 0", ">= 1"]),
       (EVAL + ["--search", "early-beam", "--beam-step", "25"], ["beam step k = 25", "of 20 steps"]),
       (EVAL + ["--search", "vote", "--method", "vote"], ["unknown search method 'vote'"]),
       (EVAL + ["--search", "best-of-n", "--method", "vote"], ["--search best-of-n and --method vote"])]
    + _sampler_cases(TRACE, [])
    + _score_cases(TRACE, [])
    + _out_cases(["trace"], [])
    + [(TRACE + ["--sample", "{data}"], ["has no first_frame.png", "data"]),
       (TRACE + ["--sample", "{root}/nope"], ["not a sample folder", "first_frame.png", "nope"]),
       (TRACE + ["--size", "2"], ["from 3 to 9 cells", "got 2"]),
       (TRACE + ["--task", "sokoban"], ["unknown task 'sokoban'"]),
       (TRACE + ["--data", "{empty}"], ["no samples under", "empty"]),
       (TRACE + ["--steps", "3", "--decode-steps", "3"], ["--decode-steps: step 3 out of range", "0..2"]),
       (TRACE + ["--decode-steps", "1,1"], ["--decode-steps: repeated step 1"]),
       (TRACE + ["--decode-steps", "x"], ["--decode-steps", "comma-separated integers", "'x'"])]
    + _sampler_cases(PROBE, [])
    + _source_cases(PROBE, [])
    + _score_cases(PROBE, [])
    + _out_cases(["probe", "noise"], ["--count", "1"])
    + [(["probe", "nonesuch", "--out", "{root}/o-p2"], ["unknown probe 'nonesuch'", "noise"]),
       (["probe", "swap", "--data", "{data}", "--out", "{root}/o-p3", "--steps", "2"],
        ["prompt chooses the answer", "maze"]),
       (PROBE + ["--batch", "0"], ["'--batch'", "greater than or equal to 1"]),
       # --plan's seconds per NFE, the noise probe's frame protocol, a wan:PATH plan without its steps
       (PROBE + ["--plan", "--sec-per-nfe", "0"], ["--sec-per-nfe 0.0", "positive number"]),
       (PROBE + ["--plan", "--sec-per-nfe", "-4.1"], ["--sec-per-nfe -4.1", "positive number"]),
       (PROBE + ["--plan", "--sec-per-nfe", "inf"], ["--sec-per-nfe inf", "positive number"]),
       (COMPARE + ["--plan", "--sec-per-nfe", "-1"], ["--sec-per-nfe -1.0", "positive number"]),
       (STUDY + ["--plan", "--sec-per-nfe", "0"], ["--sec-per-nfe 0.0", "positive number"]),
       (PROBE + ["--frame-noise", "sometimes"], ["frame_noise 'sometimes'", "one-step, every-step"]),
       (["probe", "energy", "--count", "1", "--out", "{root}/o-p4", "--frame-noise", "every-step"],
        ["--frame-noise every-step", "noise probe", "'energy'"]),
       # the plan probe's seeds per sample (issue 35): bounded, and an option of that probe only
       (["probe", "plan", "--count", "1", "--out", "{root}/o-p5", "--n-seeds", "0"], ["--n-seeds 0", "1 to 64"]),
       (["probe", "plan", "--count", "1", "--out", "{root}/o-p5", "--n-seeds", "65"], ["--n-seeds 65", "1 to 64"]),
       (["probe", "plan", "--count", "1", "--out", "{root}/o-p5", "--teacher", "nonesuch"],
        ["--teacher 'nonesuch'", "tiny-reasoner"]),
       (["probe", "noise", "--count", "1", "--out", "{root}/o-p6", "--teacher", "tiny-reasoner"],
        ["--teacher tiny-reasoner", "plan probe", "'noise'"]),
       (["probe", "energy", "--count", "1", "--out", "{root}/o-p6", "--n-seeds", "3"],
        ["--n-seeds 3", "plan probe", "'energy'"]),
       (PROBE + ["--plan", "--model", "wan:{root}/nowhere"], ["--plan on wan:", "--steps", "--guidance"]),
       (STUDY + ["--plan", "--model", "wan:{root}/nowhere", "--steps", "2", "--guidance", "1"],
        ["--plan on wan:", "--tasks"])]
    + [(cmd + ["--json"], ["--json prints the plan", "--plan"]) for cmd in (PROBE, COMPARE, STUDY)]
    + _sampler_cases(COMPARE, [])
    + _source_cases(COMPARE, [])
    + _score_cases(COMPARE, [])
    + _out_cases(["compare"], ["--count", "1"])
    + [(COMPARE + ["--n-seeds", ""], ["--n-seeds", "''"]),
       (COMPARE + ["--ens-steps", "25", "--n-seeds", "2"], ["--ens-steps", "step 25 out of range", "0..19"]),
       (COMPARE + ["--n-seeds", "a,b"], ["comma-separated integers", "'a,b'"]),
       (COMPARE + ["--n-seeds", "1"], ["N = 1", "N >= 2"]),
       (COMPARE + ["--n-seeds", "0"], ["N = 0", "N >= 2"]),
       (COMPARE + ["--n-seeds", "2,2"], ["repeated N", "[2, 2]"]),
       (COMPARE + ["--methods", "bogus"], ["unknown method 'bogus'"]),
       (COMPARE + ["--methods", "vote,vote"], ["repeated", "'vote', 'vote'"]),
       (COMPARE + ["--ens-blocks", "99", "--n-seeds", "2"], ["block 99 out of range"]),
       (COMPARE + ["--alpha", "2"], ["--alpha 2.0", "<= 1"]),
       (COMPARE + ["--alpha", "nan"], ["--alpha nan", "finite"]),
       (COMPARE + ["--budget", "0,2"], ["--budget 0", "below one plain run's NFE"]),
       (COMPARE + ["--budget", "a"], ["--budget", "comma-separated integers", "'a'"]),
       (COMPARE + ["--keep", "2"], ["go with --budget"]),
       (COMPARE + ["--budget", "2", "--verifier", "nope"], ["unknown verifier 'nope'", "consensus"]),
       (COMPARE + ["--budget", "2", "--search-methods", "beam"], ["search methods ['beam']", "best-of-n"]),
       (COMPARE + ["--budget", "2", "--task", "tictactoe", "--search-methods", "chain"],
        ["chain needs a task with a continue_from hook", "'tictactoe'"]),
       (COMPARE + ["--budget", "1", "--keep", "2"], ["budget 1: early-beam with m = 2 needs at least"])]
    + _sampler_cases(DEMO, [], guidance=False)
    + _out_cases(["demo"], ["--count", "1"])
    + [(DEMO + ["--size", "2"], ["from 3 to 9 cells", "got 2"]),
       (DEMO + ["--count", "0"], ["'--count'", "greater than or equal to 1"]),
       (DEMO + ["--guidance", "nan"], ["--guidance nan", "finite"])]
    + _sampler_cases(STUDY, [])  # the study takes the model and sampling options as every command does
    + _out_cases(["study"], ["--count", "1"])
    + [c for c in _source_cases(STUDY, []) if "--frames" not in c[0] and "--task" not in c[0] and "--size" not in c[0]
       and "--tasks" not in c[0] and ("--split" not in c[0] or "--data" in c[0])]  # study's --tasks: its families
    + _score_cases(STUDY, [])
    + _score_cases(STUDY, ["--data", "{data}"])
    + [(STUDY + ["--preset", "fast"], ["--preset 'fast' does not exist", "pipeline"]),
       (STUDY + ["--height", "32"], ["--height and --width go together"]),
       (STUDY + ["--tasks", "sokoban"], ["unknown task 'sokoban'"]),
       (STUDY + ["--parts", "magic"], ["unknown study part 'magic'", "solve"]),
       (STUDY + ["--parts", "chains"], ["--parts chains", "--baseline"]),
       (STUDY + ["--train-log", "{root}/nope.jsonl"], ["--train-log", "nope.jsonl", "not found"])]
    # where the jobs run (issue 23): the engine's name, the worker count against the launch's
    + [(cmd + ["--engine", "slurm"], ["--engine slurm", "unknown engine 'slurm'", "torchrun, ray"])
       for cmd in (PROBE, COMPARE, STUDY)]
    + [(cmd + ["--workers", "0"], ["--workers must be >= 1, got 0"]) for cmd in (PROBE, COMPARE, STUDY)]
    + [(PROBE + ["--workers", "3"], ["--workers 3 with --engine torchrun", "1 process", "torchrun --nproc_per_node 3"])]
    + [(cmd + ["--vbvr-score", "weighted"], ["--vbvr-score 'weighted'", "task-specific, full"])
       for cmd in (EVAL, TRACE, PROBE, COMPARE)]
    + [(["score", "--data", "{data}", "--outputs", "{data}"] + extra, must) for extra, must in
       [(["--scorer", "nonesuch"], ["unknown scorer 'nonesuch'", "maze, maze-shortest, reappear, symmetry, tictactoe, vbvr"]),
        (["--threshold", "2"], ["--threshold 2.0", "<= 1"]),
        (["--vbvr-score", "weighted"], ["--vbvr-score 'weighted'", "unknown score mode", "task-specific, full"]),
        (["--vbvr-score", "full"], ["--vbvr-score full applies to the vbvr scorer", "--scorer vbvr"]),
        (["--scorer", "vbvr-pro", "--vbvr-pro-source", "{empty}"], ["--vbvr-pro-source", "empty",
                                                                    "is not a VBVR-Pro-Bench source folder"]),
        (["--scorer", "vbvr-pro", "--vbvr-pro-source", "{root}/nope"], ["--vbvr-pro-source", "nope", "not found"]),
        (["--vbvr-pro-source", "{empty}"], ["--vbvr-pro-source", "applies to --scorer vbvr-pro"]),
        (["--out", "{afile}/x.json"], ["--out", "afile", "is a file"])]]
    + [(["score", "--data", "{data}", "--outputs", "{root}/typo"], ["outputs folder not found", "typo"]),
       (["score", "--data", "{data}", "--outputs", "{afile}"], ["--outputs", "afile", "is a file"]),
       (["score", "--data", "{data}", "--outputs", "{empty}"], ["none of the 2 outputs", "empty"]),
       (["score", "--data", "{root}/nope", "--outputs", "{data}"], ["data folder not found", "nope"]),
       (["score", "--data", "{empty}", "--outputs", "{data}"], ["no samples under", "empty"]),
       (["score", "--data", "{data}", "--outputs", "{data}", "--split", "x"], ["--split x", "no split folders"]),
       (["score", "--data", "{data}", "--outputs", "{data}", "--tasks", "sokoban"], ["--tasks 'sokoban'"])]
    + [(["tasks", "generate", "sokoban", "--out", "{root}/g"], ["unknown task 'sokoban'", "maze"]),
       (["tasks", "generate", "maze", "--size", "2", "--out", "{root}/g"], ["from 3 to 9 cells", "got 2"]),
       (["tasks", "generate", "maze", "--frames", "1", "--out", "{root}/g"], ["at least 2 frames", "got 1"]),
       (["tasks", "generate", "maze", "--count", "0", "--out", "{root}/g"], ["'--count'", "greater than or equal to 1"]),
       (["tasks", "generate", "maze", "--upscale", "0", "--out", "{root}/g"], ["'--upscale'", "greater than or equal to 1"]),
       (["tasks", "generate", "maze", "--upscale", "1.5", "--out", "{root}/g"], ["'--upscale'", "integer"]),
       (["tasks", "generate", "maze", "--upscale", "3", "--out", "{root}/g"], ["--upscale 3", "even"]),
       (["tasks", "generate", "maze", "--out", "{afile}"], ["--out", "afile", "is a file"])]
    + [(["train", "--out", "{root}/t", "--config", "{root}/missing.json"], ["--config", "missing.json", "not found"]),
       (["train", "--out", "{root}/t", "--config", "{root}"], ["--config", "is a folder"]),
       (["train", "--out", "{root}/t", "--config", "{bad_json}"], ["bad.json", "Invalid JSON"]),
       (["train", "--out", "{root}/t", "--config", "{unknown_key}"], ["unknown_key.json", "stepz", "Extra inputs"]),
       (["train", "--out", "{root}/t", "--config", "{batch0}"], ["batch0.json", "batch must be >= 1, got 0"]),
       (["train", "--out", "{root}/t", "--config", "{task_json}"], ["task.json", "unknown task 'sokoban'"]),
       (["train", "--out", "{root}/t", "--config", "{arch_json}"], ["arch.json", "'huge'"]),
       (["train", "--out", "{root}/t", "--config", "{lr_json}"], ["lr.json", "lr must be a finite number"]),
       (["train", "--out", "{root}/t", "--steps", "-1"], ["--steps -1", ">= 0"]),
       (["train", "--out", "{root}/t", "--threads", "0"], ["--threads 0", ">= 1"]),
       (["train", "--out", "{root}/t", "--threads", "-3"], ["--threads -3", ">= 1"]),
       (["train", "--out", "{root}/t", "--device", "cuda"], ["--device 'cuda'", "no CUDA GPU"]),
       (["train", "--out", "{afile}"], ["--out", "afile", "is a file"]),
       (["train", "--out", "{root}/run", "--config", "{batch0}"], ["batch must be >= 1"]),
       (["train", "--out", "{root}/t", "--config", "{path_weight}"], ["path_weight.json", "path_weight must be >= 0"]),
       (["train", "--out", "{root}/t", "--config", "{frames1}"], ["frames1.json", "at least 2 frames", "got 1"])]
    + [(["export", "--checkpoint", "{root}/nope.safetensors", "--out", "{root}/w.safetensors"],
        ["--checkpoint", "nope.safetensors", "not found"]),
       (["export", "--checkpoint", "{corrupt}", "--out", "{root}/w.safetensors"], ["corrupt.safetensors", "corrupt"]),
       (["export", "--checkpoint", "{ckpt}", "--out", "{ckpt}"], ["is the checkpoint itself", "checkpoint.safetensors"]),
       (["export", "--checkpoint", "{ckpt}", "--out", "{root}"], ["--out", "is a folder"]),
       (["export", "--checkpoint", "{ckpt}", "--out", "{root}/w.pt"], ["--out", "w.pt", ".safetensors"]),
       (["export", "--checkpoint", "{root}", "--out", "{root}/w.safetensors"], ["--checkpoint", "is a folder"]),
       (["export", "--checkpoint", "{data}/maze/00000/prompt.txt", "--out", "{root}/w.safetensors"],
        ["prompt.txt", "corrupt or not a safetensors file"])]
)


def test_the_battery_is_large_and_covers_every_command():
    commands = {c[0][0] if c[0][0] not in ("tasks", "probe") else " ".join(c[0][:2]) for c in CASES}
    assert len(CASES) >= 200
    assert {"run", "score", "eval", "trace", "demo", "compare", "study", "train", "export", "tasks generate"} <= commands
    assert any(c.startswith("probe") for c in commands)


@pytest.mark.parametrize("args, must", CASES, ids=[" ".join(a)[:90] for a, _ in CASES])
def test_bad_input_gets_a_clear_error(paths, args, must):
    args = [a.format(**paths) for a in args]
    snapshot = sorted(p.relative_to(paths["root"]).as_posix() for p in __import__("pathlib").Path(paths["root"]).rglob("*"))
    r = CliRunner().invoke(app, args)
    text = " ".join(r.output.split())
    assert r.exit_code == 2, (r.exit_code, text, r.exception)
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output
    for m in must:
        assert m.format(**paths) in text, (m, text)
    # a refused command leaves every folder as it was (nothing half-made, no temp file)
    after = sorted(p.relative_to(paths["root"]).as_posix() for p in __import__("pathlib").Path(paths["root"]).rglob("*"))
    assert after == snapshot, set(after) ^ set(snapshot)


def test_engine_ray_without_ray_names_the_install_line_before_any_model_loads(paths, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as where Ray is not installed
    for cmd in (PROBE, COMPARE, STUDY):
        r = CliRunner().invoke(app, [a.format(**paths) for a in cmd] + ["--engine", "ray", "--model", "{root}/nope"
                                                                        .format(**paths)])
        text = " ".join(r.output.split())
        assert r.exit_code == 2 and "Traceback" not in r.output, text
        # the missing model file is not reached: the engine is refused first, with the install line
        assert "--engine ray needs Ray, which is not installed" in text and "pip install 'steplens[ray]'" in text, text


def _api_cases():
    from steplens.experiments.grid import ExperimentSettings
    from steplens.experiments.stats import paired_bootstrap
    from steplens.hooks import Hooks
    from steplens.io.files import write_mp4
    from steplens.methods.ensemble import EnsembleConfig
    from steplens.models.load import load_model
    from steplens.presets import resolve
    from steplens.tasks import get_scorer, register_task
    from steplens.tasks.folders import SampleSource
    from steplens.training.train import TrainConfig

    return [
        (lambda p: load_model("nonesuch"), "unknown model 'nonesuch'"),
        (lambda p: load_model(p["corrupt"]), "corrupt"),
        (lambda p: load_model("tiny-maze", dtype="float64"), "unknown dtype 'float64'"),
        (lambda p: get_task("sokoban"), "unknown task 'sokoban'"),
        (lambda p: get_scorer("nonesuch"), "unknown scorer 'nonesuch'"),
        (lambda p: get_task("maze").sample(0, 10), "got 10"),
        (lambda p: get_task("maze").sample(0, 3, 1), "got 1"),
        (lambda p: get_task("maze").sample(0, 3, target="blue"), "target 'blue'"),
        (lambda p: SampleSource(data=p["empty"]).load(), "no samples under"),
        (lambda p: SampleSource(data=p["data"], size=5).load(), "--size 5 applies to generated samples"),
        (lambda p: SampleSource(count=0), "count must be >= 1"),
        (lambda p: SampleSource(frames=1), "frames must be >= 2"),
        (lambda p: ExperimentSettings(steps=0), "steps must be >= 1, got 0"),
        (lambda p: ExperimentSettings(batch=-1), "batch must be >= 1, got -1"),
        (lambda p: EnsembleConfig(n_seeds=0), "n_seeds must be >= 1, got 0"),
        (lambda p: EnsembleConfig(alpha=math.nan), "alpha must be in [0, 1], got nan"),
        (lambda p: EnsembleConfig(target="heads"), "heads"),
        (lambda p: TrainConfig(batch=0), "batch must be >= 1, got 0"),
        (lambda p: TrainConfig(stepz=3), "stepz"),
        (lambda p: TrainConfig(tasks={"sokoban": 1}), "unknown task 'sokoban'"),
        (lambda p: TrainConfig.from_file(p["bad_json"]), "bad.json"),
        (lambda p: write_mp4(p["root"] + "/odd.mp4", np.zeros((2, 7, 8, 3), np.uint8)), "8x7"),
        (lambda p: write_mp4(p["root"] + "/flat.mp4", np.zeros((7, 8, 3), np.uint8)), "(7, 8, 3)"),
        (lambda p: paired_bootstrap([], []), "at least one pair"),
        (lambda p: Hooks(load_model("tiny-maze")).record("blocks.9"), "blocks.9"),
        (lambda p: Hooks(load_model("tiny-maze")).record("blocks.1", reduce="median"), "'median'"),
        (lambda p: register_task(object()), "lacks 'name'"),
        (lambda p: resolve(load_model("tiny-maze"), "distilled"),
         "'distilled' is not a preset of model 'tiny-maze' (embedded); its presets: pipeline"),
        (lambda p: resolve(load_model("tiny-maze"), sigmas=[0.5, 0.9]),
         "σ 0.9 (item 2"),
        (lambda p: load_model("tiny-maze").generate([get_task("maze").sample(0, 3, 2)], [0], sampling=resolve(load_model("tiny-maze"), sigmas=[])),
         "give at least one σ"),
        (lambda p: load_model("tiny-maze").generate([get_task("maze").sample(0, 3, 2)], [0], sampling=resolve(load_model("tiny-maze"), sigmas=[1, 1.5])),
         "σ 1.5"),
        (lambda p: register_task(replace(get_task("tictactoe"), name="ttt-bad", harder=0)), "harder = 0; allowed: 1"),
        (lambda p: load_model("tiny-maze").generate([get_task("maze").sample(0, 3, 2)], [0], sampling=resolve(load_model("tiny-maze"), steps=3),
                                                    hooks=Hooks(load_model("tiny-maze")).record("x0", steps=[5])),
         "asks for step 5, but this run runs 3 steps (0..2)"),
        (lambda p: Hooks(load_model("tiny-maze")).edit("latent", lambda x, c: x, steps=[-2]), "step -2 out of range"),
        (lambda p: TrainConfig(path_weight=-1), "path_weight must be >= 0"),
        (lambda p: SampleSource(data=p["root"] + "/latin1").load(), "prompt.txt is not UTF-8"),
        (lambda p: SampleSource(data=p["root"] + "/jpeg").load(), "JPEG image, not a PNG"),
    ]


API = _api_cases()


@pytest.mark.parametrize("i", range(len(API)))
def test_bad_python_api_input_is_named(paths, i):
    fn, must = API[i]
    with pytest.raises((ValueError, TypeError, FileNotFoundError, KeyError)) as e:
        fn(paths)
    assert must in str(e.value), str(e.value)


def test_batch_defaults_to_one_on_a_pipeline_before_it_loads():
    """Issue 22, item 5: a 14B pipeline call holds the whole batch (x2 with CFG); the default follows the model."""
    from steplens.cli.options import ModelOptions, batch_for

    assert batch_for(ModelOptions(model="wan:/models/Wan2.2-I2V-A14B-Diffusers"), None, 50) == 1
    assert batch_for(ModelOptions(model="diffusers:/x"), None, 16) == 1
    assert batch_for(ModelOptions(model="tiny-maze"), None, 50) == 50
    assert batch_for(ModelOptions(model="wan:/x"), 4, 50) == 4  # as asked


# -- an --out folder of another configuration, refused before the model loads (issue 22, item 5): probe, compare and
# trace, as run and eval are (tests/cli/test_before_load.py); `loads` (conftest.py) counts the real loader's calls

def _cli(*args):
    r = CliRunner().invoke(app, [str(a) for a in args])
    return r, " ".join(r.output.split())


OTHER_CONFIGS = ((["--steps", 3], "steps: saved 2, given 3"), (["--steps", 2, "--guidance", 2], "guidance: saved"),
                 (["--steps", 2, "--model", "tiny-maze-2goal"],
                  "model: saved \"tiny-maze\", given \"tiny-maze-2goal\""),
                 (["--steps", 2, "--size", 4], "size: saved 3, given 4"),
                 (["--steps", 2, "--seed", 5], "seed: saved 0, given 5"))


def _refused_before_loading(cmd, out, loads, configs=OTHER_CONFIGS):
    before = sorted((p.relative_to(out).as_posix(), p.read_bytes()) for p in out.rglob("*") if p.is_file())
    for extra, field in configs:
        r, text = _cli(*cmd, *extra)
        assert r.exit_code == 2, (extra, text)
        assert "another configuration" in text and field in text and "another --out" in text, (field, text)
        assert len(loads) == 1, (extra, loads)  # refused before the model loads (minutes on a 14B model)
    assert sorted((p.relative_to(out).as_posix(), p.read_bytes()) for p in out.rglob("*") if p.is_file()) == before


@pytest.mark.parametrize("name", ["noise", "energy"])
def test_probe_into_a_folder_of_another_configuration_is_refused_before_the_model_loads(name, tmp_path, loads):
    out = tmp_path / name
    cmd = ["probe", name, "--size", 3, "--frames", 2, "--batch", 1, "--out", out]
    r, text = _cli(*cmd, "--count", 1, "--steps", 2)
    assert r.exit_code == 0, text
    assert loads == ["tiny-maze"]
    rows = (out / "store" / "rows.jsonl").read_text().splitlines()
    (out / "results.json").unlink()  # as a killed run leaves it: its store alone says how it was made
    _refused_before_loading(cmd + ["--count", 1], out, loads)
    r, text = _cli(*cmd, "--count", 2, "--steps", 2)  # the same configuration resumes, one sample more
    assert r.exit_code == 0, text
    assert len(loads) == 2
    grown = (out / "store" / "rows.jsonl").read_text().splitlines()
    assert set(rows) < set(grown) and len(grown) == 2 * len(rows)


def test_swap_at_other_steps_whose_swapped_steps_coincide_is_refused(tmp_path, loads):
    """The swap probe's default steps at 4 and 5 sampling steps are both 0, 1, 2: its option `steps` took the name
    of the sampling's in the folder's configuration, and a 5-step rerun added 5-step rows to the 4-step store."""
    out = tmp_path / "swap"
    cmd = ["probe", "swap", "--count", 1, "--size", 3, "--frames", 2, "--batch", 1, "--out", out]
    r, text = _cli(*cmd, "--steps", 4)
    assert r.exit_code == 0, text
    (out / "results.json").unlink()  # as a killed run leaves it
    _refused_before_loading(cmd, out, loads, ((["--steps", 5], "steps: saved 4, given 5"),))
    from steplens.experiments.grid import open_store  # and refused by the store itself, once the model has loaded

    config = json.loads((out / "store" / "store_config.json").read_text())
    assert config["steps"] == [0, 1, 2] and config["settings"]["steps"] == 4  # the steps it swaps at; the sampling's
    with pytest.raises(ValueError, match='settings: saved {"steps": 4}, given {"steps": 5}'):
        open_store(out, "swap", {**{k: v for k, v in config.items() if k != "experiment"}, "settings": {"steps": 5}})


def test_compare_into_a_folder_of_another_configuration_is_refused_before_the_model_loads(tmp_path, loads):
    out = tmp_path / "compare"
    cmd = ["compare", "--size", 3, "--frames", 2, "--batch", 1, "--n-seeds", 2, "--methods", "vote", "--out", out]
    r, text = _cli(*cmd, "--count", 1, "--steps", 2)
    assert r.exit_code == 0, text
    rows = (out / "store" / "rows.jsonl").read_text().splitlines()
    _refused_before_loading(cmd + ["--count", 1], out, loads,
                            OTHER_CONFIGS + ((["--steps", 2, "--scorer", "maze-shortest"],
                                             "scorer: saved null, given \"maze-shortest\""),))
    r, text = _cli(*cmd, "--count", 2, "--steps", 2)
    assert r.exit_code == 0 and len(loads) == 2, text
    grown = (out / "store" / "rows.jsonl").read_text().splitlines()
    assert set(rows) < set(grown) and len(grown) == 2 * len(rows)


def test_trace_into_a_folder_of_another_configuration_is_refused_before_the_model_loads(tmp_path, loads):
    out = tmp_path / "trace"
    cmd = ["trace", "--size", 3, "--frames", 2, "--out", out]
    r, text = _cli(*cmd, "--steps", 2)
    assert r.exit_code == 0, text
    metrics = json.loads((out / "metrics.json").read_text())
    _refused_before_loading(cmd, out, loads, OTHER_CONFIGS + ((["--steps", 2, "--decode-steps", "1"],
                                                                "decode_steps: saved [0, 1], given [1]"),))
    r, text = _cli(*cmd, "--steps", 2)  # the same configuration traces again
    assert r.exit_code == 0 and len(loads) == 2, text
    assert json.loads((out / "metrics.json").read_text()) == metrics
    r, text = _cli(*cmd, "--decode-steps", "0,1")  # the model's own 20 steps: known once it loads, refused then
    assert r.exit_code == 2 and "steps: saved 2, given 20" in text, text


@pytest.mark.wan
def test_probe_rerun_without_the_loras_or_in_another_dtype_is_refused_before_the_pipeline_loads(tmp_path, loads):
    pytest.importorskip("diffusers")
    pytest.importorskip("peft")
    from builders import held_wan22

    one, two = held_wan22(tmp_path)
    out = tmp_path / "energy"
    cmd = ["probe", "energy", "--model", f"wan:{tmp_path / 'wan22'}", "--steps", 2, "--count", 1, "--size", 3,
           "--frames", 2, "--batch", 1, "--out", out]
    r, text = _cli(*cmd, "--lora", one, "--lora-2", f"{two}:0.5")
    assert r.exit_code == 0, text
    _refused_before_loading(cmd, out, loads, (([], "loras: saved"), (["--lora", one, "--lora-2", f"{two}:0.7"],
                                                                     "loras: saved"),
                                              (["--lora", one, "--lora-2", f"{two}:0.5", "--dtype", "bfloat16"],
                                               "dtype: saved \"float32\", given \"bfloat16\"")))


@pytest.fixture(scope="module")
def other_pipelines(tmp_path_factory):
    """Tiny LTX-2 and HunyuanVideo-1.5 pipeline folders, saved as users hold them."""
    diffusers = pytest.importorskip("diffusers")
    pytest.importorskip("transformers")
    if not hasattr(diffusers, "LTX2ImageToVideoPipeline") or not hasattr(diffusers,
                                                                          "HunyuanVideo15ImageToVideoPipeline"):
        pytest.skip("this diffusers has no LTX-2 or HunyuanVideo-1.5")
    from steplens.backends.ltx2.tiny import tiny_ltx2_i2v
    from steplens.backends.tiny.hunyuan15 import tiny_hunyuan15_i2v

    root = tmp_path_factory.mktemp("pipelines")
    tiny_ltx2_i2v(seed=0).save_pretrained(root / "ltx2")
    tiny_hunyuan15_i2v(seed=0).save_pretrained(root / "hy")
    return root


@pytest.mark.wan
@pytest.mark.parametrize("folder, family, multiple", [
    ("ltx2", "not supported yet for LTX-2", "multiples of 32 (LTX-2's rule 32; VAE 32 x patch 1)"),
    ("hy", "not supported for HunyuanVideo-1.5", "multiples of 4 (VAE 4 x patch 1)")])
@pytest.mark.parametrize("size", [(64, 64), (33, 47)])
def test_height_and_width_on_ltx2_and_hunyuan_are_refused_before_the_pipeline_loads(other_pipelines, folder, family,
                                                                                     multiple, size, paths, tmp_path,
                                                                                     loads):
    """These pipelines take no call size (it follows each sample's first frame, upscaled by an integer to the
    pipeline's multiple): --height/--width are refused from the folder's configs, naming the multiple, unloaded."""
    model = f"wan:{other_pipelines / folder}"
    for cmd in (["run", "--data", paths["data"], "--out", tmp_path / "run"], ["probe", "noise", "--count", 1,
                                                                         "--out", tmp_path / "probe"],
                ["trace", "--out", tmp_path / "trace"]):
        r, text = _cli(*cmd, "--model", model, "--steps", 2, "--height", size[0], "--width", size[1])
        assert r.exit_code == 2, text
        for must in (f"--height {size[0]}, --width {size[1]}", family, multiple,
                     "model_index.json", "leave --height/--width out"):
            assert must in text, (must, text)
        assert loads == [] and not (tmp_path / "run").exists()


@pytest.mark.wan
@pytest.mark.filterwarnings("ignore:.*has no text encoder")
def test_the_multiple_read_from_a_folders_configs_is_the_loaded_pipelines(other_pipelines):
    """What the refusal above names, read without loading, is what the loaded model computes."""
    from steplens.backends import load_pipeline_model

    for folder in ("ltx2", "hy"):
        m = load_pipeline_model(f"wan:{other_pipelines / folder}")
        assert type(m).folder_size_multiple(str(other_pipelines / folder))[0] == m.spatial_multiple, folder


# -- the probes' own options, refused before the model loads (and before --plan prints a bill for them): each was
# refused only once the model had loaded (minutes on a 14B pipeline), and --plan printed a plan for it
PROBE_OPTIONS = (
    (["compare", "--methods", "bogus"], "unknown method 'bogus'; available: single"),
    (["compare", "--n-seeds", "1"], "N = 1: the multi-seed methods need N >= 2 seeds"),
    (["compare", "--budget", "2", "--search-methods", "bogus"], "search methods ['bogus']: each once, from"),
    (["compare", "--budget", "2", "--search-methods", "chain", "--task", "tictactoe"],
     "chain needs a task with a continue_from hook; task 'tictactoe' has none"),
    (["compare", "--budget", "2", "--beam-step", "50"], "beam step k = 50: must be below the last step (1)"),
    (["compare", "--ens-steps", "9"], "--ens-steps: step 9 out of range: sampling has steps 0..1"),
    (["probe", "swap", "--task", "maze"], "task 'maze' has none"),
    (["probe", "noise", "--task", "nope"], "unknown task 'nope'; available:"),
    (["probe", "energy", "--task", "nope"], "unknown task 'nope'; available:"),
)


@pytest.mark.parametrize("plan", [False, True], ids=["run", "plan"])
@pytest.mark.parametrize("args,must", PROBE_OPTIONS, ids=[" ".join(a) for a, _ in PROBE_OPTIONS])
def test_a_probes_own_options_are_refused_before_the_model_loads(args, must, plan, tmp_path, loads):
    out = tmp_path / "out"
    r, text = _cli(*args, *(["--plan"] if plan else []), "--count", 1, "--size", 3, "--frames", 2, "--steps", 2,
                   "--out", out)
    assert r.exit_code == 2, text
    assert text.startswith("error:") and must in text, text
    assert loads == [] and not out.exists(), (loads, text)


RUN_OPTIONS = (
    (["eval", "--search", "early-beam", "--beam-step", "50"], "beam step k = 50: must be below the last step (1)"),
    (["eval", "--task", "nope"], "unknown task 'nope'; available:"),
    (["trace", "--task", "nope"], "unknown task 'nope'; available:"),
)


@pytest.mark.parametrize("args,must", RUN_OPTIONS, ids=[" ".join(a) for a, _ in RUN_OPTIONS])
def test_eval_and_trace_refuse_a_bad_task_or_beam_step_before_the_model_loads(args, must, tmp_path, loads):
    out = tmp_path / "out"
    r, text = _cli(*args, "--count", 1, "--size", 3, "--frames", 2, "--steps", 2, "--out", out)
    assert r.exit_code == 2, text
    assert text.startswith("error:") and must in text, text
    assert loads == [], (loads, text)


# -- search (issue 31, item 4 / finding 6): a verifier plug-in's bad output is named (plug-in, sample), never ranked
# nor a traceback; a folder the chosen verifier cannot read is refused before the model loads

class _NaNJudge:
    name = "bad-input-nan"

    def verify(self, video, sample):
        from steplens.tasks import Score

        return Score(score=float("nan"), success=True)


class _BrokenJudge:
    name = "bad-input-broken"

    def verify(self, video, sample):
        raise KeyError("frames")


class _LooseJudge:
    name = "bad-input-loose"

    def verify(self, video, sample):
        return 0.9


VERIFIER_OUTPUTS = (("bad-input-nan", _NaNJudge, "score nan is not a finite number in [0, 1]"),
                    ("bad-input-broken", _BrokenJudge, "raised KeyError: 'frames'"),
                    ("bad-input-loose", _LooseJudge, "returned a float (0.9); expected a steplens.tasks.Score"))


@pytest.mark.parametrize("name, factory, must", VERIFIER_OUTPUTS, ids=[v[0] for v in VERIFIER_OUTPUTS])
@pytest.mark.parametrize("cmd", [["eval", "--count", 1, "--size", 3], ["compare", "--count", 1, "--size", 3,
                                                                        "--budget", 2, "--methods", "vote",
                                                                        "--search-methods", "best-of-n"]])
def test_a_verifier_plugins_bad_output_is_named_with_the_sample(name, factory, must, cmd, tmp_path, monkeypatch):
    from steplens.tasks import register_verifier, verifier_names, verify as V

    verifier_names()
    monkeypatch.setattr(V, "_VERIFIERS", dict(V._VERIFIERS))  # this test's plug-in only
    register_verifier(name, factory)
    search = ["--search", "best-of-n", "--particles", 2] if cmd[0] == "eval" else []
    r, text = _cli(*cmd, *search, "--verifier", name, "--frames", 2, "--steps", 2, "--out", tmp_path / "out")
    assert r.exit_code == 2, text
    assert f"error: verifier {name!r} on sample maze/00000" in text and must in text, text  # after the progress bar
    assert "Traceback" not in r.output


def test_a_folder_the_task_verifier_cannot_read_is_refused_before_the_model_loads(tmp_path, loads):
    from builders import make_vbvr_rendered

    make_vbvr_rendered(tmp_path / "vbvr", per_task=1)
    out = tmp_path / "out"
    r, text = _cli("compare", "--data", tmp_path / "vbvr", "--budget", 2, "--steps", 2, "--out", out)
    assert r.exit_code == 2, text
    assert "verifier 'task' cannot verify 1 of 1 samples" in text and "--verifier consensus" in text, text
    assert loads == [] and not (out / "store").exists(), (loads, text)


class _UnbuildableJudge:
    name = "bad-input-unbuildable"

    def __init__(self):
        raise OSError("no such file: /models/judge.safetensors")


def test_a_verifier_plugin_that_cannot_be_built_is_named_before_the_model_loads(tmp_path, monkeypatch, loads):
    from steplens.tasks import register_verifier, verifier_names, verify as V

    verifier_names()
    monkeypatch.setattr(V, "_VERIFIERS", dict(V._VERIFIERS))
    register_verifier("bad-input-unbuildable", _UnbuildableJudge)
    for cmd in (["eval", "--search", "best-of-n"], ["compare", "--budget", 2, "--methods", "vote"]):
        r, text = _cli(*cmd, "--verifier", "bad-input-unbuildable", "--count", 1, "--size", 3, "--steps", 2,
                       "--out", tmp_path / "out")
        assert r.exit_code == 2 and text.startswith("error:"), text
        assert "verifier 'bad-input-unbuildable' could not be built: OSError: no such file" in text, text
    assert loads == []


def test_study_into_a_folder_of_another_configuration_is_refused_before_the_model_loads(tmp_path, loads):
    """Issue 31, item 5: `study` checks its folder's configuration (every part's store) before the model loads, as
    `probe` does: a resumed study with other settings is refused, naming the field, with the loader never called."""
    out = tmp_path / "study"
    cmd = ["study", "--tasks", "maze", "--count", 1, "--probe-count", 1, "--batch", 1, "--parts", "solve,noise",
           "--out", out]
    r, text = _cli(*cmd, "--steps", 2)
    assert r.exit_code == 0, text
    assert loads == ["tiny-maze"]
    (out / "study.json").unlink()  # as a killed study leaves it: its parts' stores alone say how it was made
    _refused_before_loading(cmd, out, loads, ((["--steps", 3], "steps: saved 2, given 3"),
                                              (["--steps", 2, "--guidance", 2], "guidance: saved"),
                                              (["--steps", 2, "--model", "tiny-maze-2goal"],
                                               "model: saved \"tiny-maze\", given \"tiny-maze-2goal\""),
                                              (["--steps", 2, "--seed", 5], "seed: saved 0, given 5"),
                                              (["--steps", 2, "--scorer", "maze-shortest"],
                                               "scorer: saved null, given \"maze-shortest\"")))
    r, text = _cli(*cmd, "--steps", 2)  # the same configuration resumes
    assert r.exit_code == 0 and len(loads) == 2, text
