import sys, numpy as np, torch
torch.set_num_threads(1)
from steplens.tasks import draw, get_task
from steplens.tasks.sample import continue_from_frames
from steplens.tasks.symmetry import SymmetryScorer
from steplens.models.load import load_model
from steplens.io.video import to_uint8
fam = sys.argv[1]; N = int(sys.argv[2])
m = load_model("tiny-reasoner-frames"); sc = SymmetryScorer(); task = get_task(fam)
for n, T in [(6, 3), (6, 4), (6, 5), (4, 3), (8, 3)]:
    S = [draw(task, s, "test", n, T) for s in range(N)]
    res = []
    for k in range(1, T):
        ss = S if k == 1 else [continue_from_frames(s, s.ground_truth, k) for s in S]
        vids = [to_uint8(v) for v in m.decode(m.generate(ss, [int(s.seed) for s in ss]))]
        res.append(f"K={k}: {np.mean([sc.score(v, s).success for v, s in zip(vids, S)]):.3f}")
    print(fam, f"n={n} T={T}", *res, flush=True)
