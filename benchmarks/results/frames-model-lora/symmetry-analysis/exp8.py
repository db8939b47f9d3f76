import numpy as np, torch
torch.set_num_threads(1)
from steplens.tasks import draw, get_task
from steplens.tasks.sample import continue_from_frames
from steplens.tasks.symmetry import SymmetryScorer, read_cells, HIDDEN, off_palette, COLOURS
from steplens.models.load import load_model
from steplens.io.video import to_uint8
N = 100
m = load_model("tiny-reasoner-frames"); sc = SymmetryScorer(); task = get_task("symmetry-open")
S = [draw(task, s, "test") for s in range(N)]
for K in (1, 2):
    ss = S if K == 1 else [continue_from_frames(s, s.ground_truth, 2) for s in S]
    vids = [to_uint8(v) for v in m.decode(m.generate(ss, [int(s.seed) for s in ss]))]
    badcol = np.zeros(6, int); kinds = {"grey": 0, "blend": 0, "mismatch": 0}; nf = 0; openbad = 0; plainbad = 0
    for v, s in zip(vids, S):
        if sc.score(v, s).success: continue
        nf += 1
        first = read_cells(s.first_frame, 6); last = read_cells(v[-1], 6); bl = off_palette(v[-1], 6, last)
        hidden = first == HIDDEN; openc = hidden & hidden[:, ::-1]
        right = hidden & (last == last[:, ::-1]) & (last < len(COLOURS)) & ~bl
        bad = hidden & ~right
        badcol += bad.sum(0); openbad += (bad & openc).sum(); plainbad += (bad & ~openc).sum()
        kinds["grey"] += (bad & (last == HIDDEN)).sum(); kinds["blend"] += (bad & bl).sum()
        kinds["mismatch"] += (bad & (last != HIDDEN) & ~bl).sum()
    print(f"open K={K}: fails {nf}, bad cells per col {badcol.tolist()}, in open pairs {openbad}, plain right-half {plainbad}, kinds {kinds}")
