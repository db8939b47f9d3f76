import numpy as np, torch
torch.set_num_threads(1)
from steplens.tasks import draw, get_task
from steplens.tasks.sample import continue_from_frames
from steplens.tasks.symmetry import SymmetryScorer, read_cells, cell_means, PALETTE, HIDDEN
from steplens.models.load import load_model
from steplens.io.video import to_uint8
from steplens.presets import resolve
N = 100
m = load_model("tiny-reasoner-frames"); sc = SymmetryScorer(); task = get_task("symmetry")
S = [draw(task, s, "test") for s in range(N)]
names = "RGBYWgk"
for K in (1, 2):
    ss = S if K == 1 else [continue_from_frames(s, s.ground_truth, 2) for s in S]
    steps = []
    m.generate(ss, [int(s.seed) for s in ss], callback=lambda info: steps.append(to_uint8_all(info.x0)) ) if False else None
    xs = []
    def cb(info): xs.append(m.decode(info.x0).clone())
    lat = m.generate(ss, [int(s.seed) for s in ss], callback=cb)
    vids = [to_uint8(v) for v in m.decode(lat)]
    ok = np.array([sc.score(v, s).success for v, s in zip(vids, S)])
    ans = np.stack([read_cells(s.ground_truth[-1], 6) for s in S])
    # per step: fraction of col-5 cells of last frame whose x0 reads correct / grey / other
    print(f"K={K} rate {ok.mean():.2f}")
    for i, x in enumerate(xs):
        if i % 2 and i != len(xs) - 1: continue
        cells = np.stack([read_cells(to_uint8(x[b])[-1], 6) for b in range(N)])
        c5, a5 = cells[:, :, 5], ans[:, :, 5]
        fails = ~ok
        print(f"  step {i:2d} col5 right {np.mean(c5 == a5):.2f} grey {np.mean(c5 == HIDDEN):.2f} | among failing samples right {np.mean(c5[fails] == a5[fails]):.2f} grey {np.mean(c5[fails]==HIDDEN):.2f}")
