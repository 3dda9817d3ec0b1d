import numpy as np, sys, time, os
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_np import *
O = os.environ.get("XCHECK_OUT", os.path.join(os.path.dirname(os.path.abspath(__file__)), "out"))
seed = int(sys.argv[1]) if len(sys.argv) > 1 else 0
chol = sys.argv[2] if len(sys.argv) > 2 else "f32"
cfg, emb, layers, rms_f = load()
ev = np.fromfile(f"{O}/eval.i32", np.int32)
calib = np.fromfile(f"{O}/calib_seed{seed}.i32", np.int32).reshape(64, 256)
t = time.time()
if not os.environ.get("SKIPFP"):
    print(f"numpy FP32 ppl {ppl(cfg, emb, layers, rms_f, ev):.4f} ({time.time()-t:.0f}s)", flush=True)
def cmp(i):
    p = f"{O}/lowbit_s{seed}_inputs_L{i}.f32"
    return np.fromfile(p, np.float32) if os.path.exists(p) else None
t = time.time()
q = gptq_sequential(cfg, emb, layers, calib, 3, 32, True, chol=chol, compare_inputs=cmp)
print(f"quantized in {time.time()-t:.0f}s", flush=True)
allw = np.concatenate([q[l][n].ravel() for l in range(cfg['nl']) for n in NAMES]).astype(np.float32)
allw.tofile(f"{O}/numpy_s{seed}_{chol}_w3act_weights.f32")
lw = f"{O}/lowbit_s{seed}_w3act_weights.f32"
if os.path.exists(lw):
    lo = np.fromfile(lw, np.float32)
    off = 0
    for l in range(cfg['nl']):
        for n in NAMES:
            k = q[l][n].size
            d = np.abs(lo[off:off+k] - q[l][n].ravel()); off += k
            nd = int((d > 1e-6).sum())
            print(f"  L{l} {n:12s} differing {nd}/{k} max {d.max():.3e}")
print(f"numpy GPTQ w3 g32 act-order seed {seed} ({chol}) ppl {ppl(cfg, emb, q, rms_f, ev):.4f}", flush=True)
