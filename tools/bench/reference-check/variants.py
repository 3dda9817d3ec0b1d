import os
import numpy as np, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_np as M
from gptq_np import find_params, quantize, fasterquant, HessAcc
O = os.environ.get("XCHECK_OUT", os.path.join(os.path.dirname(os.path.abspath(__file__)), "out"))
cfg, emb, layers, rms_f = M.load()
ev = np.fromfile(f"{O}/eval.i32", np.int32)
which = sys.argv[1]

def rtn(W, bits, g):
    Q = np.empty_like(W)
    for c0 in range(0, W.shape[1], g):
        s, z, mq = find_params(W[:, c0:c0+g], bits)
        Q[:, c0:c0+g] = quantize(W[:, c0:c0+g], s[:, None], z[:, None], mq)
    return Q

if which.startswith("rtn"):
    bits = int(which[3])
    for ragged in (True, False):
        q = [dict(L) for L in layers]
        for L in q:
            for n in M.NAMES:
                c = L[n].shape[1]
                g = 32 if (ragged or c % 32 == 0) else 43
                L[n] = rtn(L[n], bits, g)
        print(f"RTN w{bits} g32 {'ragged 32 on down (5x32+12)' if ragged else 'g43 on down'}: ppl {M.ppl(cfg, emb, q, rms_f, ev):.4f}", flush=True)

if which == "gptq-ragged":
    calib = np.fromfile(f"{O}/calib_seed0.i32", np.int32).reshape(64, 256)
    bits = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    act = (sys.argv[3] != "noact") if len(sys.argv) > 3 else True
    # group 32 everywhere; gptq.py slices W[:, j:j+32] so the last down_proj group is 12 wide
    orig = M.gptq_sequential
    layers2 = [dict(L) for L in layers]
    inps = emb[calib]
    for L in layers2:
        accs = {}
        def hook(name, x):
            if name not in accs: accs[name] = HessAcc(x.shape[-1])
            accs[name].add_batch(x[0], 1)
        for j in range(64):
            M.layer_forward(cfg, L, inps[j:j+1], hook)
        for n in M.NAMES:
            L[n], _ = fasterquant(L[n], accs[n].H, bits, 32, act)
        inps = np.concatenate([M.layer_forward(cfg, L, inps[j:j+8]) for j in range(0, 64, 8)])
    print(f"GPTQ w{bits} g32 act={act} ragged 32 on down, seed 0: ppl {M.ppl(cfg, emb, layers2, rms_f, ev):.4f}", flush=True)
