/**
 * The playground's demo model, made in the page from a seed (the repository embeds no trained
 * model yet): a small LLaMA-architecture decoder whose layers are random, with a tokenizer and a
 * classifier fitted to the sample text so that its perplexity and its generations mean something.
 *
 * - Tokenizer: byte-pair merges learned from the training half of the sample text, in llama2.c's
 *   format (3 specials, 256 byte tokens, characters, merges scored by rank), run by
 *   @lowbit/runtime's Llama2cTokenizer.
 * - Decoder layers: seeded normal weights (a few heavy-tailed entries) and RMSNorm gains with a few
 *   large "outlier" channels, as trained LLMs have, so activation-aware methods have work to do.
 * - Classifier: least-squares fit (ridge) of the logits to smoothed bigram log-probabilities of the
 *   training text, from the hidden states the random layers actually produce.
 *
 * Pure TypeScript over the lowbit packages: the page and the Node tests build the same model.
 */
import {
  Llama2cTokenizer,
  type LlamaConfig,
  type LlamaModel,
  type Tokenizer,
  buildModel,
  documentHalf,
  encodeDocuments,
  makeConfig,
  memorySource,
  splitDocuments,
} from "@lowbit/runtime";
import { Rng, inverseSPD } from "@lowbit/tensor";
import { SAMPLE_STORIES } from "./sample-text";

export type TensorMap = Map<string, { shape: number[]; data: Float32Array }>;

export interface DemoOptions {
  seed: number;
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
}

export const DEMO_DEFAULTS: DemoOptions = { seed: 42, dim: 128, hiddenDim: 384, nLayers: 4, nHeads: 4, nKvHeads: 2, vocabSize: 512 };

export interface DemoModel {
  config: LlamaConfig;
  tensors: TensorMap;
  tokenizer: Tokenizer;
  /** Documents the tokenizer and classifier were fitted on (and calibration draws from). */
  trainDocs: string[];
  /** Held-out documents for perplexity. */
  evalDocs: string[];
}

interface TokenizerData {
  maxTokenLength: number;
  tokens: Uint8Array[];
  scores: Float32Array;
}

/**
 * Byte-pair merges over words (each with its leading space, as SentencePiece sees them) until the
 * vocabulary has `vocabSize` entries. Ties go to the lexicographically smaller pair (deterministic).
 */
export function trainTokenizer(docs: readonly string[], vocabSize: number): TokenizerData {
  const enc = new TextEncoder();
  const counts = new Map<string, number>();
  for (const d of docs) {
    for (const w of ` ${d}`.match(/\s*\S+/g) ?? []) {
      const word = w.replace(/\s+/g, " ");
      counts.set(word, (counts.get(word) ?? 0) + 1);
    }
  }
  const words = [...counts.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([w, c]) => ({ syms: [...w], count: c }));
  const chars = [...new Set(words.flatMap((w) => w.syms))].sort();
  const tokens: string[] = ["<unk>", "<s>", "</s>"];
  for (let b = 0; b < 256; b++) tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
  const scores: number[] = new Array(tokens.length).fill(0);
  for (const c of chars) {
    tokens.push(c);
    scores.push(0);
  }
  const merges = vocabSize - tokens.length;
  for (let m = 0; m < merges; m++) {
    const pairs = new Map<string, number>();
    for (const w of words) {
      for (let i = 0; i + 1 < w.syms.length; i++) {
        const key = `${w.syms[i]}\u0000${w.syms[i + 1]}`;
        pairs.set(key, (pairs.get(key) ?? 0) + w.count);
      }
    }
    let best: string | undefined;
    let bestCount = 1;
    for (const [k, c] of pairs) if (c > bestCount || (c === bestCount && best !== undefined && k < best)) [best, bestCount] = [k, c];
    if (!best) break;
    const [a, b] = best.split("\u0000") as [string, string];
    const merged = a + b;
    tokens.push(merged);
    scores.push(-m - 1);
    for (const w of words) {
      const out: string[] = [];
      for (let i = 0; i < w.syms.length; i++) {
        if (i + 1 < w.syms.length && w.syms[i] === a && w.syms[i + 1] === b) {
          out.push(merged);
          i++;
        } else out.push(w.syms[i]!);
      }
      w.syms = out;
    }
  }
  // pad with unused byte strings if the text had too few pairs (keeps vocabSize exact)
  while (tokens.length < vocabSize) {
    tokens.push(`<pad${tokens.length}>`);
    scores.push(-1e9);
  }
  const bytes = tokens.map((t) => enc.encode(t));
  return { maxTokenLength: Math.max(...bytes.map((b) => b.length)), tokens: bytes, scores: Float32Array.from(scores) };
}

function normalMatrix(rng: Rng, rows: number, cols: number, std: number): Float32Array {
  const w = new Float32Array(rows * cols);
  rng.fillNormal(w, 0, std);
  // a few heavy-tailed weights, as trained matrices have
  for (let i = 0; i < w.length; i++) if (rng.uniform() < 0.01) w[i]! *= 4;
  return w;
}

function normGains(rng: Rng, dim: number): Float32Array {
  const g = new Float32Array(dim);
  for (let i = 0; i < dim; i++) g[i] = 1 + 0.1 * rng.normal();
  // outlier channels: a few inputs an order of magnitude larger than the rest
  for (let k = 0; k < Math.max(1, dim >> 5); k++) g[rng.int(dim)] = 6 + 2 * rng.uniform();
  return g;
}

/** The seeded random tensors of every decoder layer, the embedding and the final norm (no classifier yet). */
export function randomTensors(cfg: LlamaConfig, seed: number): TensorMap {
  const rng = new Rng(seed);
  const t: TensorMap = new Map();
  const { dim, hiddenDim, vocabSize } = cfg;
  const kv = cfg.nKvHeads * cfg.headDim;
  const q = cfg.nHeads * cfg.headDim;
  t.set("token_embd.weight", { shape: [vocabSize, dim], data: normalMatrix(rng, vocabSize, dim, 1) });
  for (let i = 0; i < cfg.nLayers; i++) {
    const p = `blk.${i}.`;
    t.set(`${p}attn_norm.weight`, { shape: [dim], data: normGains(rng, dim) });
    t.set(`${p}attn_q.weight`, { shape: [q, dim], data: normalMatrix(rng, q, dim, 1 / Math.sqrt(dim)) });
    t.set(`${p}attn_k.weight`, { shape: [kv, dim], data: normalMatrix(rng, kv, dim, 1 / Math.sqrt(dim)) });
    t.set(`${p}attn_v.weight`, { shape: [kv, dim], data: normalMatrix(rng, kv, dim, 1 / Math.sqrt(dim)) });
    t.set(`${p}attn_output.weight`, { shape: [dim, q], data: normalMatrix(rng, dim, q, 0.5 / Math.sqrt(q)) });
    t.set(`${p}ffn_norm.weight`, { shape: [dim], data: normGains(rng, dim) });
    t.set(`${p}ffn_gate.weight`, { shape: [hiddenDim, dim], data: normalMatrix(rng, hiddenDim, dim, 1 / Math.sqrt(dim)) });
    t.set(`${p}ffn_up.weight`, { shape: [hiddenDim, dim], data: normalMatrix(rng, hiddenDim, dim, 1 / Math.sqrt(dim)) });
    t.set(`${p}ffn_down.weight`, { shape: [dim, hiddenDim], data: normalMatrix(rng, dim, hiddenDim, 0.5 / Math.sqrt(hiddenDim)) });
  }
  t.set("output_norm.weight", { shape: [dim], data: new Float32Array(dim).fill(1) });
  return t;
}

/** Final hidden states (after the final norm) of `model` at every position of `tokens`, in windows of `seqLen`. */
function hiddenStates(model: LlamaModel, tokens: readonly number[], seqLen: number): { h: Float32Array; ids: number[] } {
  const windows = Math.floor(tokens.length / seqLen);
  const dim = model.config.dim;
  const ids = tokens.slice(0, windows * seqLen);
  let x = model.embed(ids);
  for (let i = 0; i < model.nLayers; i++) x = model.runLayer(i, x, windows, seqLen);
  return { h: model.finalNorm(x, windows * seqLen).subarray(0, ids.length * dim), ids };
}

/**
 * Least-squares classifier W [V, dim] with W h_n ≈ t(x_n), where t(c) is the centred, smoothed
 * bigram log-probability vector of the token after c in the training stream.
 */
export function fitClassifier(model: LlamaModel, stream: readonly number[], seqLen: number): Float32Array {
  const { dim, vocabSize: V } = model.config;
  const { h, ids } = hiddenStates(model, stream, seqLen);
  // bigram counts within windows (the hidden state at t predicts token t+1)
  const pairs = new Float64Array(V * V);
  const from = new Float64Array(V);
  const uni = new Float64Array(V).fill(1);
  for (let n = 0; n + 1 < ids.length; n++) {
    if ((n + 1) % seqLen === 0) continue;
    const c = ids[n]!;
    const y = ids[n + 1]!;
    pairs[c * V + y]! += 1;
    from[c]! += 1;
    uni[y]! += 1;
  }
  let uniSum = 0;
  for (let y = 0; y < V; y++) uniSum += uni[y]!;
  const beta = 4;
  // S[c] = sum of hidden states at positions holding token c; A = sum h h^T
  const S = new Float64Array(V * dim);
  const A = new Float64Array(dim * dim);
  for (let n = 0; n < ids.length; n++) {
    if ((n + 1) % seqLen === 0) continue;
    const c = ids[n]!;
    const hn = h.subarray(n * dim, (n + 1) * dim);
    for (let j = 0; j < dim; j++) S[c * dim + j]! += hn[j]!;
    for (let a = 0; a < dim; a++) {
      const ha = hn[a]!;
      for (let b = 0; b <= a; b++) A[a * dim + b]! += ha * hn[b]!;
    }
  }
  let trace = 0;
  for (let a = 0; a < dim; a++) trace += A[a * dim + a]!;
  for (let a = 0; a < dim; a++) {
    A[a * dim + a]! += (1e-3 * trace) / dim;
    for (let b = a + 1; b < dim; b++) A[a * dim + b] = A[b * dim + a]!;
  }
  const Ainv = inverseSPD(A, dim);
  // B[y] = sum_c t_c[y] S[c]
  const B = new Float64Array(V * dim);
  const t = new Float64Array(V);
  for (let c = 0; c < V; c++) {
    if (from[c] === 0) continue;
    let mean = 0;
    for (let y = 0; y < V; y++) {
      t[y] = Math.log((pairs[c * V + y]! + (beta * uni[y]!) / uniSum) / (from[c]! + beta));
      mean += t[y]!;
    }
    mean /= V;
    const sc = S.subarray(c * dim, (c + 1) * dim);
    for (let y = 0; y < V; y++) {
      const ty = t[y]! - mean;
      const row = y * dim;
      for (let j = 0; j < dim; j++) B[row + j]! += ty * sc[j]!;
    }
  }
  const W = new Float32Array(V * dim);
  for (let y = 0; y < V; y++) {
    for (let j = 0; j < dim; j++) {
      let s = 0;
      for (let k = 0; k < dim; k++) s += B[y * dim + k]! * Ainv[k * dim + j]!;
      W[y * dim + j] = s;
    }
  }
  return W;
}

/** Builds the demo model (a few hundred milliseconds). Same options, same model, in Node and in browsers. */
export async function makeDemoModel(options: Partial<DemoOptions> = {}): Promise<DemoModel> {
  const o = { ...DEMO_DEFAULTS, ...options };
  const docs = splitDocuments(SAMPLE_STORIES);
  const trainDocs = documentHalf(docs, "first");
  const evalDocs = documentHalf(docs, "second");
  const tokenizer = new Llama2cTokenizer(trainTokenizer(trainDocs, o.vocabSize));
  const config = makeConfig({
    architecture: "llama",
    dim: o.dim,
    hiddenDim: o.hiddenDim,
    nLayers: o.nLayers,
    nHeads: o.nHeads,
    nKvHeads: o.nKvHeads,
    vocabSize: o.vocabSize,
    maxSeqLen: 256,
    tiedEmbeddings: false,
    bosTokenId: 1,
    eosTokenIds: [2],
  });
  const tensors = randomTensors(config, o.seed);
  tensors.set("output.weight", { shape: [config.vocabSize, config.dim], data: new Float32Array(config.vocabSize * config.dim) });
  const probe = await buildModel(config, memorySource(tensors));
  try {
    const stream = encodeDocuments(tokenizer, trainDocs);
    tensors.set("output.weight", { shape: [config.vocabSize, config.dim], data: fitClassifier(probe, stream, 64) });
  } finally {
    probe.dispose();
  }
  return { config, tensors, tokenizer, trainDocs, evalDocs };
}
