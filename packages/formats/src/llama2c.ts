import { LowbitError } from "@lowbit/tensor";
import { LITTLE_ENDIAN, RandomAccessFile, readWholeFile } from "./file-io";

/** Model hyper-parameters of a llama2.c checkpoint (legacy float32 format). */
export interface Llama2cConfig {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  /** Always positive; the sign in the file only says whether the classifier is shared. */
  vocabSize: number;
  seqLen: number;
  /** True when the classifier reuses `token_embd.weight` (positive vocab_size in the file). */
  sharedClassifier: boolean;
}

export interface Llama2cTensor {
  /** Row-major shape; matrices are [out, in]. */
  shape: number[];
  data: Float32Array;
}

export interface Llama2cCheckpoint {
  config: Llama2cConfig;
  /** GGUF-style names: token_embd.weight, blk.N.attn_q.weight, ..., output_norm.weight, output.weight. */
  tensors: Map<string, Llama2cTensor>;
}

const HEADER_BYTES = 28;
const HEADER_FIELDS = ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"] as const;

function fail(path: string, message: string): never {
  throw new LowbitError("E_LLAMA2C", `${path}: ${message}`);
}

/** Parses and validates the 28-byte header against the file size. */
export function parseLlama2cHeader(path: string, header: Uint8Array, fileSize: number): Llama2cConfig {
  if (header.byteLength < HEADER_BYTES) {
    fail(path, `file is ${fileSize} bytes, too short for the 28-byte llama2.c header`);
  }
  const dv = new DataView(header.buffer, header.byteOffset, HEADER_BYTES);
  const raw = HEADER_FIELDS.map((_, i) => dv.getInt32(i * 4, true));
  const config = configFromHeaderValues(path, raw);
  const expected = expectedFileSize(config);
  if (BigInt(fileSize) !== expected) {
    const fields = HEADER_FIELDS.map((f, i) => `${f}=${raw[i]}`).join(", ");
    fail(path, `file size is ${fileSize} bytes but the header (${fields}) implies ${expected} bytes`);
  }
  return config;
}

/** The config of the seven header values, checked (positive, divisible heads, even head size). */
function configFromHeaderValues(path: string, raw: readonly number[]): Llama2cConfig {
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, rawVocab, seqLen] = raw as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  raw.forEach((v, i) => {
    const field = HEADER_FIELDS[i]!;
    if (field === "vocab_size") {
      if (v === 0 || v === -2147483648) fail(path, `header field vocab_size is ${v}; expected a non-zero value`);
    } else if (v <= 0) {
      fail(path, `header field ${field} is ${v}; expected a positive integer`);
    }
  });
  if (dim % nHeads !== 0) fail(path, `header field dim (${dim}) is not divisible by n_heads (${nHeads})`);
  if (nHeads % nKvHeads !== 0) {
    fail(path, `header field n_heads (${nHeads}) is not divisible by n_kv_heads (${nKvHeads})`);
  }
  const headSize = dim / nHeads;
  if (headSize % 2 !== 0) fail(path, `head size dim/n_heads = ${headSize} must be even (RoPE pairs)`);
  const config: Llama2cConfig = {
    dim,
    hiddenDim,
    nLayers,
    nHeads,
    nKvHeads,
    vocabSize: Math.abs(rawVocab),
    seqLen,
    sharedClassifier: rawVocab > 0,
  };
  return config;
}

const CONFIG_FIELDS = ["dim", "hiddenDim", "nLayers", "nHeads", "nKvHeads", "vocabSize", "seqLen"] as const;

/**
 * The 28-byte header of a checkpoint for `config` (vocab_size negative when the classifier is
 * separate), after checking the config as the reader checks a header (`E_LLAMA2C` naming the field).
 * Returns the header and the size of the whole file it implies.
 */
export function encodeLlama2cHeader(config: Llama2cConfig, source: string): { header: Uint8Array; fileSize: number } {
  for (const field of CONFIG_FIELDS) {
    const v = config[field];
    if (!Number.isInteger(v) || v <= 0 || v > 0x7fffffff) {
      fail(source, `config field ${field} is ${String(v)}; expected a positive 32-bit integer`);
    }
  }
  if (typeof config.sharedClassifier !== "boolean") {
    fail(source, `config field sharedClassifier is ${String(config.sharedClassifier)}; expected true or false`);
  }
  const raw = CONFIG_FIELDS.map((f) => (f === "vocabSize" && !config.sharedClassifier ? -config[f] : config[f]));
  // the reader's checks (divisible heads, even head size)
  const checked = configFromHeaderValues(source, raw);
  const size = expectedFileSize(checked);
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) fail(source, `config implies a file of ${size} bytes, too large`);
  const header = new Uint8Array(HEADER_BYTES);
  const dv = new DataView(header.buffer);
  raw.forEach((v, i) => {
    dv.setInt32(i * 4, v, true);
  });
  return { header, fileSize: Number(size) };
}

interface Segment {
  /** Name for a single tensor, or a template with N for per-layer stacks. */
  name: string;
  perLayer: boolean;
  shape: number[];
}

/** Weight order of the legacy llama2.c export, followed by the freq_cis tables and optional wcls. */
function layout(c: Llama2cConfig): { before: Segment[]; freqCisFloats: number; after: Segment[] } {
  const kvDim = (c.dim * c.nKvHeads) / c.nHeads;
  const headSize = c.dim / c.nHeads;
  const before: Segment[] = [
    { name: "token_embd.weight", perLayer: false, shape: [c.vocabSize, c.dim] },
    { name: "attn_norm", perLayer: true, shape: [c.dim] },
    { name: "attn_q", perLayer: true, shape: [c.dim, c.dim] },
    { name: "attn_k", perLayer: true, shape: [kvDim, c.dim] },
    { name: "attn_v", perLayer: true, shape: [kvDim, c.dim] },
    { name: "attn_output", perLayer: true, shape: [c.dim, c.dim] },
    { name: "ffn_norm", perLayer: true, shape: [c.dim] },
    { name: "ffn_gate", perLayer: true, shape: [c.hiddenDim, c.dim] },
    { name: "ffn_down", perLayer: true, shape: [c.dim, c.hiddenDim] },
    { name: "ffn_up", perLayer: true, shape: [c.hiddenDim, c.dim] },
    { name: "output_norm.weight", perLayer: false, shape: [c.dim] },
  ];
  const after: Segment[] = c.sharedClassifier
    ? []
    : [{ name: "output.weight", perLayer: false, shape: [c.vocabSize, c.dim] }];
  return { before, freqCisFloats: c.seqLen * headSize, after };
}

function expectedFileSize(c: Llama2cConfig): bigint {
  const { before, freqCisFloats, after } = layout(c);
  let floats = BigInt(freqCisFloats);
  for (const s of [...before, ...after]) {
    const n = s.shape.reduce((a, d) => a * BigInt(d), 1n);
    floats += s.perLayer ? n * BigInt(c.nLayers) : n;
  }
  return BigInt(HEADER_BYTES) + floats * 4n;
}

/** One weight tensor of a checkpoint and where its floats start (in floats after the header). */
export interface Llama2cEntry {
  name: string;
  shape: number[];
  count: number;
  floatOffset: number;
}

/**
 * The tensors of a checkpoint in file order with their float offsets after the header, and where
 * the freq_cis tables (2 x seq_len x head_size/2 floats, between output_norm and wcls) start.
 */
export function llama2cLayout(config: Llama2cConfig): { entries: Llama2cEntry[]; freqCisOffset: number; freqCisFloats: number; totalFloats: number } {
  const { before, freqCisFloats, after } = layout(config);
  const entries: Llama2cEntry[] = [];
  let pos = 0;
  const add = (segments: Segment[]) => {
    for (const s of segments) {
      const count = s.shape.reduce((a, d) => a * d, 1);
      const names = s.perLayer ? Array.from({ length: config.nLayers }, (_, i) => `blk.${i}.${s.name}.weight`) : [s.name];
      for (const name of names) {
        entries.push({ name, shape: [...s.shape], count, floatOffset: pos });
        pos += count;
      }
    }
  };
  add(before);
  const freqCisOffset = pos;
  pos += freqCisFloats;
  add(after);
  return { entries, freqCisOffset, freqCisFloats, totalFloats: pos };
}

/** Byte offset of the first weight (the end of the 28-byte header). */
export const LLAMA2C_HEADER_BYTES = HEADER_BYTES;

/**
 * Reads a legacy llama2.c float32 checkpoint (the format of karpathy/llama2.c `run.c`). The header
 * is validated and the file size must match it exactly; each tensor is read into its own
 * Float32Array. The RoPE freq_cis tables are skipped.
 */
export async function readLlama2cCheckpoint(path: string): Promise<Llama2cCheckpoint> {
  const file = await RandomAccessFile.open(path);
  try {
    const header = await file.readAt(0, Math.min(HEADER_BYTES, file.size), "E_LLAMA2C");
    const config = parseLlama2cHeader(path, header, file.size);
    const tensors = new Map<string, Llama2cTensor>();
    for (const e of llama2cLayout(config).entries) {
      const data = await file.readF32At(HEADER_BYTES + e.floatOffset * 4, e.count, "E_LLAMA2C");
      tensors.set(e.name, { shape: e.shape, data });
    }
    return { config, tensors };
  } finally {
    await file.close();
  }
}

/**
 * Parses a llama2.c checkpoint already in memory (e.g. a file dropped in a browser page), with the
 * same validation and result as readLlama2cCheckpoint; `source` names it in messages. Every
 * tensor is copied into its own Float32Array.
 */
export function parseLlama2cCheckpoint(bytes: Uint8Array, source = "llama2.c checkpoint"): Llama2cCheckpoint {
  const config = parseLlama2cHeader(source, bytes.subarray(0, HEADER_BYTES), bytes.byteLength);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tensors = new Map<string, Llama2cTensor>();
  for (const e of llama2cLayout(config).entries) {
    const start = HEADER_BYTES + e.floatOffset * 4;
    let data: Float32Array;
    if (LITTLE_ENDIAN) {
      data = new Float32Array(bytes.slice(start, start + e.count * 4).buffer);
    } else {
      data = new Float32Array(e.count);
      for (let i = 0; i < e.count; i++) data[i] = dv.getFloat32(start + i * 4, true);
    }
    tensors.set(e.name, { shape: e.shape, data });
  }
  return { config, tensors };
}

export interface Llama2cTokenizer {
  maxTokenLength: number;
  /** Raw token bytes (not necessarily valid UTF-8: byte-fallback tokens). */
  tokens: Uint8Array[];
  scores: Float32Array;
}

/** Tokenizer files are small (LLaMA's 32,000 tokens take ~430 KB); refuse absurd sizes. */
const MAX_TOKENIZER_BYTES = 256 * 1024 * 1024;

/**
 * Reads a llama2.c tokenizer (`tokenizer.bin`): int32 max_token_length, then for each token a
 * float32 score, an int32 byte length and the bytes, until the end of the file. When
 * `expectedVocabSize` is given the token count must match it.
 */
export async function readLlama2cTokenizer(
  path: string,
  options: { expectedVocabSize?: number } = {},
): Promise<Llama2cTokenizer> {
  const bytes = await readWholeFile(path, MAX_TOKENIZER_BYTES, "E_TOKENIZER");
  return parseLlama2cTokenizer(bytes, path, options);
}

/** Parses tokenizer bytes already in memory (see readLlama2cTokenizer). */
export function parseLlama2cTokenizer(
  bytes: Uint8Array,
  source = "tokenizer",
  options: { expectedVocabSize?: number } = {},
): Llama2cTokenizer {
  const bad = (msg: string): never => {
    throw new LowbitError("E_TOKENIZER", `${source}: ${msg}`);
  };
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 4) bad(`file is ${bytes.byteLength} bytes, too short for max_token_length`);
  const maxTokenLength = dv.getInt32(0, true);
  if (maxTokenLength <= 0) bad(`max_token_length is ${maxTokenLength}; expected a positive integer`);
  const tokens: Uint8Array[] = [];
  const scoreList: number[] = [];
  let pos = 4;
  while (pos < bytes.byteLength) {
    const i = tokens.length;
    if (pos + 8 > bytes.byteLength) bad(`token ${i} at byte ${pos}: truncated (score and length need 8 bytes)`);
    const score = dv.getFloat32(pos, true);
    const len = dv.getInt32(pos + 4, true);
    pos += 8;
    if (Number.isNaN(score)) bad(`token ${i}: score is NaN`);
    if (len < 0) bad(`token ${i}: byte length ${len} is negative`);
    if (len > maxTokenLength) bad(`token ${i}: byte length ${len} exceeds max_token_length ${maxTokenLength}`);
    if (pos + len > bytes.byteLength) {
      bad(`token ${i}: byte length ${len} runs past the end of the file (${bytes.byteLength - pos} bytes left)`);
    }
    tokens.push(bytes.slice(pos, pos + len));
    scoreList.push(score);
    pos += len;
  }
  if (tokens.length === 0) bad("no tokens after max_token_length");
  if (options.expectedVocabSize !== undefined && tokens.length !== options.expectedVocabSize) {
    bad(`has ${tokens.length} tokens; expected vocab_size ${options.expectedVocabSize}`);
  }
  return { maxTokenLength, tokens, scores: Float32Array.from(scoreList) };
}
