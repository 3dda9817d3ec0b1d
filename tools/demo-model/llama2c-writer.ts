// Writes a llama2.c float32 checkpoint (the legacy run.c layout that @lowbit/formats'
// readLlama2cCheckpoint reads): seven little-endian int32 (dim, hidden_dim, n_layers, n_heads,
// n_kv_heads, vocab_size — negative when the classifier is separate — and seq_len), then the
// weights, each family stacked over layers, the RoPE freq_cis tables, and wcls when not shared.
import { open, rename, rm } from "node:fs/promises";

export interface Llama2cWriteConfig {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  seqLen: number;
  sharedClassifier: boolean;
  ropeTheta?: number;
}

type Tensors = Map<string, { shape: number[]; data: Float32Array }>;

export function encodeLlama2cCheckpoint(c: Llama2cWriteConfig, tensors: Tensors): Uint8Array {
  const get = (name: string, n: number): Float32Array => {
    const t = tensors.get(name);
    if (!t) throw new Error(`llama2.c writer: tensor "${name}" is missing`);
    if (t.data.length !== n) throw new Error(`llama2.c writer: tensor "${name}" has ${t.data.length} values, expected ${n}`);
    return t.data;
  };
  const headSize = c.dim / c.nHeads;
  const kvDim = c.nKvHeads * headSize;
  const parts: Float32Array[] = [];
  const perLayer = (suffix: string, n: number) => {
    for (let l = 0; l < c.nLayers; l++) parts.push(get(`blk.${l}.${suffix}.weight`, n));
  };
  parts.push(get("token_embd.weight", c.vocabSize * c.dim));
  perLayer("attn_norm", c.dim);
  perLayer("attn_q", c.dim * c.dim);
  perLayer("attn_k", kvDim * c.dim);
  perLayer("attn_v", kvDim * c.dim);
  perLayer("attn_output", c.dim * c.dim);
  perLayer("ffn_norm", c.dim);
  perLayer("ffn_gate", c.hiddenDim * c.dim);
  perLayer("ffn_down", c.dim * c.hiddenDim);
  perLayer("ffn_up", c.hiddenDim * c.dim);
  parts.push(get("output_norm.weight", c.dim));
  // freq_cis_real and freq_cis_imag [seq_len, head_size / 2] (unused by run.c, kept for the layout)
  const half = headSize / 2;
  const re = new Float32Array(c.seqLen * half);
  const im = new Float32Array(c.seqLen * half);
  const theta = c.ropeTheta ?? 10000;
  for (let p = 0; p < c.seqLen; p++) {
    for (let i = 0; i < half; i++) {
      const a = p / theta ** ((2 * i) / headSize);
      re[p * half + i] = Math.cos(a);
      im[p * half + i] = Math.sin(a);
    }
  }
  parts.push(re, im);
  if (!c.sharedClassifier) parts.push(get("output.weight", c.vocabSize * c.dim));
  let floats = 0;
  for (const p of parts) floats += p.length;
  const out = new Uint8Array(28 + floats * 4);
  const dv = new DataView(out.buffer);
  const header = [c.dim, c.hiddenDim, c.nLayers, c.nHeads, c.nKvHeads, c.sharedClassifier ? c.vocabSize : -c.vocabSize, c.seqLen];
  header.forEach((v, i) => {
    dv.setInt32(i * 4, v, true);
  });
  let o = 28;
  for (const p of parts) {
    for (let i = 0; i < p.length; i++, o += 4) dv.setFloat32(o, p[i]!, true);
  }
  return out;
}

/** Writes bytes to `path` through a temporary file and a rename (never a partial file). */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${Date.now().toString(36)}`;
  try {
    const fh = await open(tmp, "w");
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
}
