import sys, numpy as np, torch
torch.set_num_threads(1)
from steplens.tasks import draw, get_task
from steplens.tasks.sample import continue_from_frames
from steplens.tasks.symmetry import SymmetryScorer, read_cells, HIDDEN
from steplens.models.load import load_model
from steplens.io.video import to_uint8
fam, N = sys.argv[1], int(sys.argv[2])
m = load_model("tiny-reasoner-frames"); sc = SymmetryScorer(); task = get_task(fam)
S = [draw(task, s, "test") for s in range(N)]
for K in (1, 2):
    ss = S if K == 1 else [continue_from_frames(s, s.ground_truth, 2) for s in S]
    X0 = []
    lat = m.generate(ss, [int(s.seed) for s in ss], callback=lambda info: X0.append(m.decode(info.x0).clone()))
    final = [to_uint8(v) for v in m.decode(lat)]
    r = {i: np.mean([sc.score(to_uint8(X0[i][b]), S[b]).success for b in range(N)]) for i in (6, 8, 10, 12, 14, 16, 18)}
    ok = np.array([sc.score(v, s).success for v, s in zip(final, S)])
    first = np.stack([read_cells(s.first_frame, 6) for s in S])
    wrong = np.stack([read_cells(v[-1], 6) != read_cells(s.ground_truth[-1], 6) for v, s in zip(final, S)])
    left_open = (first == HIDDEN); left_open[:, :, 3:] = False
    print(fam, f"K={K} final {ok.mean():.3f}; scoring x0_hat at step:", {i: round(float(v), 3) for i, v in r.items()},
          "wrong cells per col", wrong.sum((0, 1)).tolist(), flush=True)
