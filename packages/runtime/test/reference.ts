/**
 * Independent float64 reference of a LLaMA decoder, written as plain loops over raw weight arrays
 * (llama2.c's run.c structure: one token at a time, KV cache of past positions). Test-only.
 */
import fs from "node:fs";

export interface RefConfig {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  seqLen: number;
  ropeStyle: "interleaved" | "half";
  ropeTheta: number;
  eps: number;
  /** Sliding attention window (most recent positions, self included). */
  window?: number;
}

export interface RefWeights {
  tokenEmbedding: Float64Array; // [vocab, dim]
  rmsAtt: Float64Array[]; // [dim] per layer
  wq: Float64Array[]; // [nHeads*hd, dim]
  wk: Float64Array[]; // [nKv*hd, dim]
  wv: Float64Array[];
  wo: Float64Array[]; // [dim, nHeads*hd]
  rmsFfn: Float64Array[];
  w1: Float64Array[]; // gate [hidden, dim]
  w2: Float64Array[]; // down [dim, hidden]
  w3: Float64Array[]; // up [hidden, dim]
  bq?: Float64Array[];
  bk?: Float64Array[];
  bv?: Float64Array[];
  rmsFinal: Float64Array;
  wcls: Float64Array; // [vocab, dim]
}

/** Parses a llama2.c checkpoint by hand (seven int32 header fields, then f32 weights). */
export function readRawLlama2c(path: string): { config: RefConfig; weights: RefWeights; f32: Map<string, { shape: number[]; data: Float32Array }> } {
  const buf = fs.readFileSync(path);
  const hdr = new Int32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + 28));
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabRaw, seqLen] = Array.from(hdr) as number[] as [number, number, number, number, number, number, number];
  const shared = vocabRaw > 0;
  const vocabSize = Math.abs(vocabRaw);
  const hd = dim / nHeads;
  const floats = new Float32Array(buf.buffer.slice(buf.byteOffset + 28, buf.byteOffset + buf.length - ((buf.length - 28) % 4)));
  let off = 0;
  const take = (n: number) => {
    const a = floats.subarray(off, off + n);
    off += n;
    return a;
  };
  const per = (n: number) => Array.from({ length: nLayers }, () => take(n));
  const tokenEmbedding = take(vocabSize * dim);
  const rmsAtt = per(dim);
  const wq = per(nHeads * hd * dim);
  const wk = per(nKvHeads * hd * dim);
  const wv = per(nKvHeads * hd * dim);
  const wo = per(dim * nHeads * hd);
  const rmsFfn = per(dim);
  const w1 = per(hiddenDim * dim);
  const w2 = per(dim * hiddenDim);
  const w3 = per(hiddenDim * dim);
  const rmsFinal = take(dim);
  take(seqLen * hd / 2);
  take(seqLen * hd / 2);
  const wcls = shared ? tokenEmbedding : take(vocabSize * dim);
  const f64 = (a: Float32Array) => Float64Array.from(a);
  const f32 = new Map<string, { shape: number[]; data: Float32Array }>();
  f32.set("token_embd.weight", { shape: [vocabSize, dim], data: tokenEmbedding });
  f32.set("output_norm.weight", { shape: [dim], data: rmsFinal });
  if (!shared) f32.set("output.weight", { shape: [vocabSize, dim], data: wcls });
  for (let l = 0; l < nLayers; l++) {
    const s = (n: string, shape: number[], data: Float32Array) => f32.set(`blk.${l}.${n}.weight`, { shape, data });
    s("attn_norm", [dim], rmsAtt[l]!);
    s("ffn_norm", [dim], rmsFfn[l]!);
    s("attn_q", [nHeads * hd, dim], wq[l]!);
    s("attn_k", [nKvHeads * hd, dim], wk[l]!);
    s("attn_v", [nKvHeads * hd, dim], wv[l]!);
    s("attn_output", [dim, nHeads * hd], wo[l]!);
    s("ffn_gate", [hiddenDim, dim], w1[l]!);
    s("ffn_down", [dim, hiddenDim], w2[l]!);
    s("ffn_up", [hiddenDim, dim], w3[l]!);
  }
  return {
    config: { dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, seqLen, ropeStyle: "interleaved", ropeTheta: 10000, eps: 1e-5 },
    weights: {
      tokenEmbedding: f64(tokenEmbedding),
      rmsAtt: rmsAtt.map(f64),
      wq: wq.map(f64),
      wk: wk.map(f64),
      wv: wv.map(f64),
      wo: wo.map(f64),
      rmsFfn: rmsFfn.map(f64),
      w1: w1.map(f64),
      w2: w2.map(f64),
      w3: w3.map(f64),
      rmsFinal: f64(rmsFinal),
      wcls: f64(wcls),
    },
    f32,
  };
}

function rmsnorm(x: Float64Array, w: Float64Array, eps: number): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const inv = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => v * inv * w[i]!);
}

function matvec(w: Float64Array, x: Float64Array, rows: number, bias?: Float64Array): Float64Array {
  const cols = x.length;
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = bias ? bias[r]! : 0;
    for (let c = 0; c < cols; c++) s += w[r * cols + c]! * x[c]!;
    out[r] = s;
  }
  return out;
}

function rope(x: Float64Array, nHeads: number, hd: number, pos: number, style: "interleaved" | "half", theta: number): void {
  for (let h = 0; h < nHeads; h++) {
    for (let i = 0; i < hd / 2; i++) {
      const freq = 1 / theta ** ((2 * i) / hd);
      const a = pos * freq;
      const c = Math.cos(a);
      const s = Math.sin(a);
      const [i0, i1] = style === "interleaved" ? [h * hd + 2 * i, h * hd + 2 * i + 1] : [h * hd + i, h * hd + i + hd / 2];
      const x0 = x[i0]!;
      const x1 = x[i1]!;
      x[i0] = x0 * c - x1 * s;
      x[i1] = x0 * s + x1 * c;
    }
  }
}

/** Token-at-a-time float64 decoder with its own KV cache. */
export class Reference64 {
  private keys: Float64Array[][];
  private values: Float64Array[][];
  pos = 0;

  constructor(
    readonly cfg: RefConfig,
    readonly w: RefWeights,
  ) {
    this.keys = Array.from({ length: cfg.nLayers }, () => []);
    this.values = Array.from({ length: cfg.nLayers }, () => []);
  }

  step(token: number): Float64Array {
    const { dim, nHeads, nKvHeads, hiddenDim, eps, ropeStyle, ropeTheta } = this.cfg;
    const hd = dim / nHeads;
    const w = this.w;
    let x = w.tokenEmbedding.slice(token * dim, (token + 1) * dim);
    for (let l = 0; l < this.cfg.nLayers; l++) {
      const xb = rmsnorm(x, w.rmsAtt[l]!, eps);
      const q = matvec(w.wq[l]!, xb, nHeads * hd, w.bq?.[l]);
      const k = matvec(w.wk[l]!, xb, nKvHeads * hd, w.bk?.[l]);
      const v = matvec(w.wv[l]!, xb, nKvHeads * hd, w.bv?.[l]);
      rope(q, nHeads, hd, this.pos, ropeStyle, ropeTheta);
      rope(k, nKvHeads, hd, this.pos, ropeStyle, ropeTheta);
      this.keys[l]!.push(k);
      this.values[l]!.push(v);
      const att = new Float64Array(nHeads * hd);
      for (let h = 0; h < nHeads; h++) {
        const kvh = Math.floor(h / (nHeads / nKvHeads));
        const scores: number[] = [];
        const t0 = this.cfg.window ? Math.max(0, this.pos - this.cfg.window + 1) : 0;
        for (let t = t0; t <= this.pos; t++) {
          let s = 0;
          for (let d = 0; d < hd; d++) s += q[h * hd + d]! * this.keys[l]![t]![kvh * hd + d]!;
          scores.push(s / Math.sqrt(hd));
        }
        const m = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - m));
        const z = e.reduce((a, b) => a + b, 0);
        for (let t = t0; t <= this.pos; t++) {
          for (let d = 0; d < hd; d++) att[h * hd + d] = att[h * hd + d]! + (e[t - t0]! / z) * this.values[l]![t]![kvh * hd + d]!;
        }
      }
      const o = matvec(w.wo[l]!, att, dim);
      x = x.map((v2, i) => v2 + o[i]!);
      const hb = rmsnorm(x, w.rmsFfn[l]!, eps);
      const g = matvec(w.w1[l]!, hb, hiddenDim);
      const u = matvec(w.w3[l]!, hb, hiddenDim);
      const a = g.map((gv, i) => (gv / (1 + Math.exp(-gv))) * u[i]!);
      const d = matvec(w.w2[l]!, a, dim);
      x = x.map((v2, i) => v2 + d[i]!);
    }
    const xf = rmsnorm(x, w.rmsFinal, eps);
    this.pos++;
    return matvec(w.wcls, xf, this.cfg.vocabSize);
  }
}

export function argmax64(x: Float64Array): number {
  let b = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[b]!) b = i;
  return b;
}
