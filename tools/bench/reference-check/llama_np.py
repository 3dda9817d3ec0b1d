"""numpy llama forward for the llama2.c stories260K checkpoint (float32) + llama.py's sequential GPTQ."""
import os
import numpy as np, sys, time
DATA = os.environ.get("LOWBIT_DATA", os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../../shared/data"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gptq_np import fasterquant, HessAcc
F = np.float32
NAMES = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]
INKEY = {"attn_q": "attn_in", "attn_k": "attn_in", "attn_v": "attn_in", "attn_output": "o_in",
         "ffn_gate": "ffn_in", "ffn_up": "ffn_in", "ffn_down": "down_in"}


def load(path=os.path.join(DATA, "stories260K", "stories260K.bin")):
    raw = open(path, "rb").read()
    dim, hid, nl, nh, nkv, vocab, seq = np.frombuffer(raw[:28], np.int32)
    a = np.frombuffer(raw[28:], np.float32)
    o = 0
    def take(*shape):
        nonlocal o
        n = int(np.prod(shape)); t = a[o:o + n].reshape(shape).copy(); o += n; return t
    hs = dim // nh
    emb = take(vocab, dim); rms_att = take(nl, dim)
    wq = take(nl, dim, dim); wk = take(nl, nkv * hs, dim); wv = take(nl, nkv * hs, dim); wo = take(nl, dim, dim)
    rms_ffn = take(nl, dim); w1 = take(nl, hid, dim); w2 = take(nl, dim, hid); w3 = take(nl, hid, dim)
    rms_f = take(dim)
    cfg = dict(dim=int(dim), hid=int(hid), nl=int(nl), nh=int(nh), nkv=int(nkv), vocab=abs(int(vocab)), hs=int(hs))
    layers = [dict(attn_norm=rms_att[l], ffn_norm=rms_ffn[l], attn_q=wq[l], attn_k=wk[l], attn_v=wv[l],
                   attn_output=wo[l], ffn_gate=w1[l], ffn_up=w3[l], ffn_down=w2[l]) for l in range(nl)]
    return cfg, emb, layers, rms_f


def rmsnorm(x, w, eps=1e-5):
    ms = np.mean(x * x, -1, keepdims=True, dtype=F)
    return (x / np.sqrt(ms + F(eps)) * w).astype(F)


_rope = {}
def rope(x, nheads, hs, T):
    # x [B, T, nheads*hs]; interleaved pairs (llama2.c)
    if T not in _rope:
        i = np.arange(0, hs, 2)
        freq = 1.0 / (10000.0 ** (i / hs))
        ang = np.arange(T)[:, None] * freq[None, :]
        _rope[T] = (np.cos(ang).astype(F), np.sin(ang).astype(F))
    c, s = _rope[T]
    B = x.shape[0]
    xr = x.reshape(B, T, nheads, hs // 2, 2)
    x0, x1 = xr[..., 0], xr[..., 1]
    c = c[None, :, None, :]; s = s[None, :, None, :]
    out = np.stack([x0 * c - x1 * s, x0 * s + x1 * c], -1)
    return out.reshape(B, T, nheads * hs).astype(F)


def layer_forward(cfg, L, x, hook=None):
    """x [B, T, dim]; hook(name, input[B,T,in]) sees each linear's input."""
    B, T, dim = x.shape
    nh, nkv, hs = cfg["nh"], cfg["nkv"], cfg["hs"]
    def lin(name, inp):
        if hook: hook(name, inp)
        return (inp @ L[name].T).astype(F)
    h = rmsnorm(x, L["attn_norm"])
    q = rope(lin("attn_q", h), nh, hs, T); k = rope(lin("attn_k", h), nkv, hs, T); v = lin("attn_v", h)
    q = q.reshape(B, T, nh, hs).transpose(0, 2, 1, 3)
    k = k.reshape(B, T, nkv, hs).transpose(0, 2, 1, 3)
    v = v.reshape(B, T, nkv, hs).transpose(0, 2, 1, 3)
    rep = nh // nkv
    k = np.repeat(k, rep, axis=1); v = np.repeat(v, rep, axis=1)
    att = (q @ k.transpose(0, 1, 3, 2)) / F(np.sqrt(hs))
    att = np.where(np.tril(np.ones((T, T), bool)), att, F(-np.inf))
    att = att - att.max(-1, keepdims=True)
    att = np.exp(att); att = (att / att.sum(-1, keepdims=True)).astype(F)
    o = (att @ v).transpose(0, 2, 1, 3).reshape(B, T, nh * hs)
    x = (x + lin("attn_output", o)).astype(F)
    h = rmsnorm(x, L["ffn_norm"])
    g = lin("ffn_gate", h); u = lin("ffn_up", h)
    a = (g / (F(1) + np.exp(-g)) * u).astype(F)
    return (x + lin("ffn_down", a)).astype(F)


def logits(cfg, emb, rms_f, x):
    return (rmsnorm(x, rms_f) @ emb.T).astype(F)


def ppl(cfg, emb, layers, rms_f, toks, SEQ=256, B=30):
    W = toks.size // SEQ
    toks = toks.reshape(W, SEQ)
    nll = 0.0
    for w0 in range(0, W, B):
        t = toks[w0:w0 + B]
        x = emb[t]
        for L in layers:
            x = layer_forward(cfg, L, x)
        lg = logits(cfg, emb, rms_f, x).astype(np.float64)[:, :-1]
        mx = lg.max(-1, keepdims=True)
        lse = mx[..., 0] + np.log(np.exp(lg - mx).sum(-1))
        tgt = np.take_along_axis(lg, t[:, 1:, None].astype(np.int64), -1)[..., 0]
        nll += float((lse - tgt).sum())
    return float(np.exp(nll / (W * (SEQ - 1))))


def gptq_sequential(cfg, emb, layers, calib, bits=3, group=32, actorder=True, chol="f32", percdamp=0.01,
                    compare_inputs=None, log=print):
    """llama.py llama_sequential without --true-sequential: per layer, Hessians of all linears from the FP layer
    run window by window, quantize all, rerun the quantized layer to get the next inputs."""
    layers = [dict(L) for L in layers]
    inps = emb[calib]  # [N, T, dim]
    N = inps.shape[0]
    for i, L in enumerate(layers):
        if compare_inputs is not None:
            ref = compare_inputs(i)
            if ref is not None:
                d = np.abs(ref.reshape(inps.shape) - inps)
                log(f"layer {i} inputs vs lowbit: max|d| {d.max():.3e} rel {np.linalg.norm(d)/np.linalg.norm(inps):.3e}")
        accs = {}
        def hook(name, x):
            if name not in accs: accs[name] = HessAcc(x.shape[-1])
            accs[name].add_batch(x[0], 1)
        for j in range(N):
            layer_forward(cfg, L, inps[j:j + 1], hook)
        for name in NAMES:
            Wt = L[name]
            cols = Wt.shape[1]
            g = group if group == -1 or cols % group == 0 else next(d for d in range(group, cols + 1) if cols % d == 0)
            Q, loss = fasterquant(Wt, accs[name].H, bits, g, actorder, chol=chol, percdamp=percdamp)
            L[name] = Q
        outs = np.concatenate([layer_forward(cfg, L, inps[j:j + 8]) for j in range(0, N, 8)])
        inps = outs
    return layers
