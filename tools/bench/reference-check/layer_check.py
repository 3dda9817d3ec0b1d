import os
import numpy as np, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gptq_np import fasterquant
O = os.environ.get("XCHECK_OUT", os.path.join(os.path.dirname(os.path.abspath(__file__)), "out"))
shapes = {"attn_q": (64, 64), "attn_k": (32, 64), "attn_output": (64, 64), "ffn_gate": (172, 64), "ffn_down": (64, 172)}
for chol in ["f32", "f64"]:
    print(f"--- numpy Cholesky/inverse in {chol}")
    for name, (r, c) in shapes.items():
        W = np.fromfile(f"{O}/L0_{name}_W.f32", np.float32).reshape(r, c)
        H = np.fromfile(f"{O}/L0_{name}_H.f32", np.float32).reshape(c, c)
        g = 32 if c % 32 == 0 else 43
        for bits in (3, 4):
            for act in (True, False):
                Qn, loss = fasterquant(W, H, bits, g, act, chol=chol)
                Ql = np.fromfile(f"{O}/L0_{name}_Q_b{bits}_{'act' if act else 'noact'}.f32", np.float32).reshape(r, c)
                d = np.abs(Qn - Ql)
                # elements whose code differs: difference at least ~ a scale step
                ndiff = int((d > 1e-6 * np.abs(Ql).max()).sum())
                rowsd = int(((d > 1e-6 * np.abs(Ql).max()).any(1)).sum())
                print(f"{name:12s} {r}x{c} g{g} b{bits} act={act!s:5s}: numpy loss {loss:12.6f}  max|dQ| {d.max():.3e}  differing elems {ndiff}/{r*c} rows {rowsd}/{r}")
