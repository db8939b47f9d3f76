import numpy as np, collections, json
from steplens.training.train import TrainConfig, _choice
cfg = TrainConfig.from_file("configs/tiny-reasoner-frames-lora.json")
c = collections.Counter()
for step in range(cfg.steps):
    rng = np.random.default_rng([cfg.seed, step])
    name = _choice(rng, cfg.tasks); n, frames = int(_choice(rng, cfg.sizes_of(name))), int(_choice(rng, cfg.frames))
    fits = {k: w for k, w in cfg.prefix.items() if k < frames and w > 0}
    known = int(_choice(np.random.default_rng([cfg.seed, step, 71]), fits))
    c[(name, n, frames, known)] += 1
for key in sorted(c):
    if key[0].startswith("symmetry"): print(key, c[key])
tot = collections.Counter()
for (nm, n, f, k), v in c.items(): tot[(nm, f - k)] += v
print({k: v for k, v in sorted(tot.items())})
