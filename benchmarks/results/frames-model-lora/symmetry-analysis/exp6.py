import numpy as np, torch
torch.set_num_threads(1)
from steplens.tasks import draw, get_task
from steplens.tasks.sample import continue_from_frames
from steplens.tasks.symmetry import SymmetryScorer, read_cells, cell_means, PALETTE
from steplens.models.load import load_model
from steplens.io.video import to_uint8
from steplens.sampling import flow_sigmas
m = load_model("tiny-reasoner-frames"); sc = SymmetryScorer(); task = get_task("symmetry")
seeds = [11, 39, 43, 47, 52, 83]
S = [draw(task, s, "test") for s in seeds]
ss = [continue_from_frames(s, s.ground_truth, 2) for s in S]
print("sigmas", [round(float(x), 3) for x in flow_sigmas(20, 3.0)])
X0, XS = [], []
def cb(info): X0.append(m.decode(info.x0).clone()); XS.append(m.decode(info.x).clone())
lat = m.generate(ss, [int(s.seed) for s in ss], callback=cb)
vids = [to_uint8(v) for v in m.decode(lat)]
for b, s in enumerate(S):
    last = read_cells(vids[b][-1], 6); ans = read_cells(s.ground_truth[-1], 6)
    bad = np.argwhere(last != ans)
    if not len(bad): print("seed", seeds[b], "ok"); continue
    r, c = bad[0]
    print("seed", seeds[b], "cell", (r, c), "want", PALETTE[ans[r, c]], "frame1 there", PALETTE[read_cells(s.ground_truth[1],6)[r,c]])
    for i in range(len(X0)):
        cm = cell_means(to_uint8(X0[i][b])[-1], 6)[r, c]
        cmx = cell_means(to_uint8(XS[i][b])[-1], 6)[r, c]
        if i >= 8: print(f"   step {i} x0_hat {cm.round().astype(int)} x_s {cmx.round().astype(int)}")
