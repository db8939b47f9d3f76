import sys, numpy as np, torch
torch.set_num_threads(1)
from steplens.tasks import draw, get_task
from steplens.tasks.sample import continue_from_frames
from steplens.tasks.symmetry import SymmetryScorer
from steplens.models.load import load_model
from steplens.models.wrap import conditioning
from steplens.training.data import sample_conditioning, video_batch
from steplens.sampling import sample_euler, initial_noise, flow_sigmas
from steplens.io.video import to_uint8
from steplens.presets import resolve
N = int(sys.argv[1])
m = load_model("tiny-reasoner-frames"); base = load_model("tiny-reasoner"); sc = SymmetryScorer(); task = get_task("symmetry")
S = [draw(task, s, "test") for s in range(N)]
S2 = [continue_from_frames(s, s.ground_truth, 2) for s in S]
# 1) train vs eval conditioning identical?
ct = sample_conditioning(S, m.codec, None, known=2); ce = m.condition(S2)
print("train/eval cond equal: first", torch.equal(ct.first_frame, ce.first_frame), "prefix", torch.equal(ct.prefix, ce.prefix),
      "prompt", torch.equal(ct.prompt_ids, ce.prompt_ids))
print("sampling", resolve(m))
def run(model, cond, steps=20, shift=3.0):
    x = initial_noise(model.latent_shape(S, 3), [int(s.seed) for s in S])
    lat = sample_euler(model, x, flow_sigmas(steps, shift), cond)
    vids = [to_uint8(v) for v in model.decode(lat)]
    return np.mean([sc.score(v, s).success for v, s in zip(vids, S)])
print("frames K=2 20 steps", run(m, ce))
print("frames K=2 60 steps", run(m, ce, 60))
print("base (no adapter) given K=2 prefix", run(base, ce))
print("base K=1", run(base, base.condition(S)))
