import sys, numpy as np, torch
torch.set_num_threads(1)
from steplens.tasks import draw, get_task
from steplens.tasks.sample import continue_from_frames
from steplens.tasks.symmetry import SymmetryScorer, read_cells, cell_means, PALETTE, HIDDEN
from steplens.models.load import load_model
from steplens.io.video import to_uint8
N = 100
m = load_model("tiny-reasoner-frames"); sc = SymmetryScorer(); task = get_task("symmetry")
S = [draw(task, s, "test") for s in range(N)]
S2 = [continue_from_frames(s, s.ground_truth, 2) for s in S]
F = []
for off in (0, 1000, 2000):
    vids = [to_uint8(v) for v in m.decode(m.generate(S2, [int(s.seed) + off for s in S2]))]
    ok = np.array([sc.score(v, s).success for v, s in zip(vids, S)]); F.append(~ok)
    # where are errors: column histogram of wrong cells
    cols = np.zeros(6, int)
    for v, s in zip(vids, S):
        cols += (read_cells(v[-1], 6) != read_cells(s.ground_truth[-1], 6)).sum(0)
    print("noise offset", off, "rate", ok.mean(), "wrong cells per column", cols.tolist(), flush=True)
F = np.array(F)
print("fails per sample over 3 noises: hist", np.bincount(F.sum(0), minlength=4).tolist())
