"""Independent numpy port of IST-DASLab gptq.py fasterquant + quant.py Quantizer (asymmetric / symmetric,
perchannel=True as llama.py configures it), written from the reference's documented behaviour.
All arithmetic in float32 like the PyTorch CPU reference unless chol='f64'."""
import numpy as np

F = np.float32


def find_params(x, bits, sym=False):
    """quant.py find_params(x, weight=True) for a 2-D x [rows, k] with perchannel=True: per-row scale, zero."""
    maxq = F(2 ** bits - 1)
    x = x.astype(F)
    xmin = np.minimum(x.min(1), F(0))
    xmax = np.maximum(x.max(1), F(0))
    if sym:
        xmax = np.maximum(np.abs(xmin), xmax)
        neg = xmin < 0
        xmin = np.where(neg, -xmax, xmin)
    both = (xmin == 0) & (xmax == 0)
    xmin = np.where(both, F(-1), xmin).astype(F)
    xmax = np.where(both, F(1), xmax).astype(F)
    scale = ((xmax - xmin) / maxq).astype(F)
    if sym:
        zero = np.full_like(scale, (maxq + 1) / 2)
    else:
        zero = np.round(-xmin / scale).astype(F)  # torch.round: half to even, as np.round
    return scale, zero, maxq


def quantize(x, scale, zero, maxq):
    q = np.clip(np.round((x / scale).astype(F)) + zero, 0, maxq).astype(F)
    return (scale * (q - zero)).astype(F)


def hinv_upper(H, percdamp, chol="f32"):
    n = H.shape[0]
    damp = F(percdamp) * F(np.mean(np.diag(H), dtype=F))
    H = H.copy()
    H[np.arange(n), np.arange(n)] += damp
    if chol == "f64":
        L = np.linalg.cholesky(H.astype(np.float64))
        Li = np.linalg.inv(L)
        Hi = Li.T @ Li
        U = np.linalg.cholesky(Hi).T
        return U.astype(F), damp
    L = np.linalg.cholesky(H)           # spotrf
    Li = np.linalg.inv(L).astype(F)      # sgesv on a triangular matrix
    Hi = (Li.T @ Li).astype(F)           # cholesky_inverse
    U = np.linalg.cholesky(Hi).T.astype(F)  # cholesky(upper=True)
    return U, damp


def fasterquant(W, H, bits, groupsize=-1, actorder=False, sym=False, blocksize=128, percdamp=0.01, chol="f32"):
    W = W.astype(F).copy()
    H = H.astype(F).copy()
    rows, cols = W.shape
    # quantizer.ready() is false on a fresh Quantizer: per-channel fit on the whole W first
    scale, zero, maxq = find_params(W, bits, sym)
    dead = np.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    perm = None
    if actorder:
        perm = np.argsort(-np.diag(H), kind="stable")
        W = W[:, perm]
        H = H[perm][:, perm]
    Hinv, damp = hinv_upper(H, percdamp, chol)
    Q = np.zeros_like(W)
    Losses = np.zeros_like(W)
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        count = i2 - i1
        W1 = W[:, i1:i2].copy()
        Q1 = np.zeros_like(W1)
        Err1 = np.zeros_like(W1)
        Losses1 = np.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        for i in range(count):
            w = W1[:, i]
            d = Hinv1[i, i]
            if groupsize != -1 and (i1 + i) % groupsize == 0:
                scale, zero, maxq = find_params(W[:, i1 + i:i1 + i + groupsize], bits, sym)
            q = quantize(w, scale, zero, maxq)
            Q1[:, i] = q
            Losses1[:, i] = (w - q) ** 2 / d ** 2
            err1 = ((w - q) / d).astype(F)
            W1[:, i:] -= np.outer(err1, Hinv1[i, i:]).astype(F)
            Err1[:, i] = err1
        Q[:, i1:i2] = Q1
        Losses[:, i1:i2] = Losses1 / 2
        W[:, i2:] -= (Err1 @ Hinv[i1:i2, i2:]).astype(F)
    if actorder:
        Q = Q[:, np.argsort(perm)]
    return Q, float(Losses.sum(dtype=np.float64))


class HessAcc:
    """gptq.py add_batch for nn.Linear: one call per (batch of) sequences, running average, f32."""
    def __init__(self, cols):
        self.H = np.zeros((cols, cols), F)
        self.n = 0

    def add_batch(self, inp, samples=1):
        self.H *= F(self.n / (self.n + samples))
        self.n += samples
        x = (F(np.sqrt(2 / self.n)) * inp.reshape(-1, inp.shape[-1]).astype(F)).T
        self.H += (x @ x.T).astype(F)
