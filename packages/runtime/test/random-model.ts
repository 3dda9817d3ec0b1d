/** Random LLaMA-family weights for tests, in the float64 reference's layout. */
import { Rng } from "@lowbit/tensor";
import type { RefConfig, RefWeights } from "./reference";

export function randomWeights(cfg: RefConfig, seed: number, opts: { bias?: boolean; tied?: boolean } = {}): RefWeights {
  const rng = new Rng(seed);
  const hd = cfg.dim / cfg.nHeads;
  const mat = (rows: number, cols: number) => {
    const a = new Float64Array(rows * cols);
    const std = 1 / Math.sqrt(cols);
    // round through f32 so f32 storage holds exactly the reference's values
    for (let i = 0; i < a.length; i++) a[i] = Math.fround(rng.normal() * std);
    return a;
  };
  const norm = () => Float64Array.from({ length: cfg.dim }, () => Math.fround(1 + 0.2 * rng.normal()));
  const per = (f: () => Float64Array) => Array.from({ length: cfg.nLayers }, f);
  const tokenEmbedding = mat(cfg.vocabSize, cfg.dim).map((v) => Math.fround(v * 4));
  const w: RefWeights = {
    tokenEmbedding,
    rmsAtt: per(norm),
    wq: per(() => mat(cfg.nHeads * hd, cfg.dim)),
    wk: per(() => mat(cfg.nKvHeads * hd, cfg.dim)),
    wv: per(() => mat(cfg.nKvHeads * hd, cfg.dim)),
    wo: per(() => mat(cfg.dim, cfg.nHeads * hd)),
    rmsFfn: per(norm),
    w1: per(() => mat(cfg.hiddenDim, cfg.dim)),
    w2: per(() => mat(cfg.dim, cfg.hiddenDim)),
    w3: per(() => mat(cfg.hiddenDim, cfg.dim)),
    rmsFinal: norm(),
    wcls: opts.tied ? tokenEmbedding : mat(cfg.vocabSize, cfg.dim),
  };
  if (opts.bias) {
    const vec = (n: number) => Float64Array.from({ length: n }, () => Math.fround(0.3 * rng.normal()));
    w.bq = per(() => vec(cfg.nHeads * hd));
    w.bk = per(() => vec(cfg.nKvHeads * hd));
    w.bv = per(() => vec(cfg.nKvHeads * hd));
  }
  return w;
}

/** The weights under Hugging Face names (f32). */
export function hfTensors(cfg: RefConfig, w: RefWeights, tied: boolean): Array<{ name: string; dtype: "F32"; shape: number[]; data: Float32Array }> {
  const hd = cfg.dim / cfg.nHeads;
  const out: Array<{ name: string; dtype: "F32"; shape: number[]; data: Float32Array }> = [];
  const add = (name: string, shape: number[], data: Float64Array) => out.push({ name, dtype: "F32", shape, data: Float32Array.from(data) });
  add("model.embed_tokens.weight", [cfg.vocabSize, cfg.dim], w.tokenEmbedding);
  for (let l = 0; l < cfg.nLayers; l++) {
    const p = `model.layers.${l}.`;
    add(`${p}input_layernorm.weight`, [cfg.dim], w.rmsAtt[l]!);
    add(`${p}self_attn.q_proj.weight`, [cfg.nHeads * hd, cfg.dim], w.wq[l]!);
    add(`${p}self_attn.k_proj.weight`, [cfg.nKvHeads * hd, cfg.dim], w.wk[l]!);
    add(`${p}self_attn.v_proj.weight`, [cfg.nKvHeads * hd, cfg.dim], w.wv[l]!);
    if (w.bq) {
      add(`${p}self_attn.q_proj.bias`, [cfg.nHeads * hd], w.bq[l]!);
      add(`${p}self_attn.k_proj.bias`, [cfg.nKvHeads * hd], w.bk![l]!);
      add(`${p}self_attn.v_proj.bias`, [cfg.nKvHeads * hd], w.bv![l]!);
    }
    add(`${p}self_attn.o_proj.weight`, [cfg.dim, cfg.nHeads * hd], w.wo[l]!);
    add(`${p}post_attention_layernorm.weight`, [cfg.dim], w.rmsFfn[l]!);
    add(`${p}mlp.gate_proj.weight`, [cfg.hiddenDim, cfg.dim], w.w1[l]!);
    add(`${p}mlp.up_proj.weight`, [cfg.hiddenDim, cfg.dim], w.w3[l]!);
    add(`${p}mlp.down_proj.weight`, [cfg.dim, cfg.hiddenDim], w.w2[l]!);
  }
  add("model.norm.weight", [cfg.dim], w.rmsFinal);
  if (!tied) add("lm_head.weight", [cfg.vocabSize, cfg.dim], w.wcls);
  return out;
}
