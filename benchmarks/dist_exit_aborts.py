"""How often a torchrun process aborts at exit (SIGABRT, "terminate called without an active exception"): N all-done
reruns of `steplens run` on 2 processes; prints how many failed.

    PYTHONPATH=src .venv/bin/python benchmarks/dist_exit_aborts.py 25
"""
import os, subprocess, sys, socket, tempfile, time
sys.path.insert(0, "tests")
from builders import make_vbvr_rendered
d = tempfile.mkdtemp(); data = os.path.join(d, "data"); out = os.path.join(d, "out")
make_vbvr_rendered(__import__("pathlib").Path(data), per_task=5, px=34)
def port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
def launch():
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
           "--master-port", str(port()), "-m", "steplens.cli", "run", "--data", data, "--out", out, "--steps", "2", "--frames", "2"]
    return subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
p = launch(); print("first", p.returncode, flush=True)
n = int(sys.argv[1]); bad = 0; t = time.time()
for i in range(n):
    p = launch(); bad += p.returncode != 0
    if p.returncode: print("rc", p.returncode, [l for l in p.stderr.splitlines() if "exitcode" in l or "terminate" in l][:2], flush=True)
print(f"{bad} of {n} reruns failed, {time.time()-t:.0f} s", flush=True)
