import { LowbitError, type Linear } from "@lowbit/tensor";
import { type AttentionMode, ropeAttention } from "./attention";
import { type LinearName, type LlamaConfig, LINEAR_NAMES, linearShape } from "./config";
import { KVCache } from "./kv-cache";
import { ResidentKV } from "./kv-resident";
import { addVectors, RopeTable, rmsNorm, siluMul } from "./ops";

/** The weights of one decoder layer. Norm weights are mutable so AWQ can fold scales into them. */
export interface DecoderLayerWeights {
  /** RMSNorm weight before attention (HF `input_layernorm`), [dim]. */
  attnNorm: Float32Array;
  /** RMSNorm weight before the feed-forward block (HF `post_attention_layernorm`), [dim]. */
  ffnNorm: Float32Array;
  linears: Record<LinearName, Linear>;
}

/** A token embedding kept in its stored encoding (e.g. GGUF Q8_0/Q4_0 blocks), decoded row by row. */
export interface EmbeddingTable {
  readonly kind: string;
  readonly storageBytes: number;
  /** Writes the dim values of token `id` into out[offset ...]. */
  row(id: number, out: Float32Array, offset: number): void;
}

/** Everything a LlamaModel computes with. */
export interface ModelWeights {
  /** Token embedding [vocabSize, dim] in f32 (empty when `embeddingTable` holds it). */
  embedding: Float32Array;
  /** The embedding in a compact encoding; when set, lookups decode rows from it. */
  embeddingTable?: EmbeddingTable;
  /** Final RMSNorm weight [dim]. */
  outputNorm: Float32Array;
  /** The classifier [vocabSize, dim] (built from the embedding when tied). */
  output: Linear;
  /** True while `output` holds the same values as the embedding (tied, not yet replaced): counted once. */
  outputShared?: boolean;
  /** One entry per layer; undefined while a lazily loaded layer is not resident. */
  layers: Array<DecoderLayerWeights | undefined>;
}

/** Loads one decoder layer's weights on demand (lazy models). */
export type LayerLoader = (layer: number) => Promise<DecoderLayerWeights>;

/** A linear layer's input and output, seen by a capture hook. */
export interface LinearCapture {
  kind: "linear";
  layer: number;
  name: LinearName;
  /** [rows, inFeatures] */
  input: Float32Array;
  /** [rows, outFeatures] */
  output: Float32Array;
  rows: number;
}

/** A decoder layer's input and output hidden states ([rows, dim]), seen by a capture hook. */
export interface LayerCapture {
  kind: "layer";
  layer: number;
  input: Float32Array;
  output: Float32Array;
  rows: number;
}

/**
 * A linear layer's input just before the linear runs, seen only by hooks registered with
 * `{ linearInputs: true }`. A hook that needs no outputs can end the forward pass here (by
 * throwing) without paying for the linear.
 */
export interface LinearInputCapture {
  kind: "linear-input";
  layer: number;
  name: LinearName;
  /** [rows, inFeatures] */
  input: Float32Array;
  rows: number;
}

export type CaptureEvent = LinearCapture | LayerCapture | LinearInputCapture;
/**
 * Called synchronously during a forward pass. The arrays are fresh for each call and never
 * reused by the model, so a hook may keep them (or copy what it needs). A hook must not write
 * into them: linears that read the same input (attn_q/k/v, ffn_gate/up) share work derived from it.
 */
export type CaptureHook = (event: CaptureEvent) => void;

/**
 * Rows (tokens) from which the decoder layer hands linears reading one input a shared memo. A
 * single-token step quantizes its small input faster than the memo copies it out and back in
 * (measured 3-5% slower 2-thread decode with the memo on the 100M Q8_0 model).
 */
const SHARED_INPUT_MIN_ROWS = 2;

/** What forward() returns logits for. */
export type LogitsMode = "last" | "all" | "none";

/**
 * A LLaMA-family decoder (RMSNorm, RoPE, grouped-query attention, SwiGLU) whose projections are
 * pluggable `Linear` backends. Offers whole-sequence forward passes with a KV cache and the
 * per-layer API the calibration driver walks (embed, runLayer, head).
 */
export class LlamaModel {
  readonly config: LlamaConfig;
  readonly weights: ModelWeights;
  private readonly rope: RopeTable;
  private readonly hooks = new Set<CaptureHook>();
  private readonly inputHooks = new Set<CaptureHook>();
  /** The last used KV cache's rows in kernel memory (decoding copies in only new rows). */
  private readonly residentKV = new ResidentKV();
  private readonly loader: LayerLoader | undefined;
  private readonly closeSource: (() => Promise<void>) | undefined;

  /**
   * `loader` reads a layer on demand (lazy models); `closeSource` releases the files it reads from
   * (called by close()).
   */
  constructor(config: LlamaConfig, weights: ModelWeights, loader?: LayerLoader, closeSource?: () => Promise<void>) {
    this.config = config;
    this.weights = weights;
    this.loader = loader;
    this.closeSource = closeSource;
    this.rope = new RopeTable(config.headDim, config.ropeTheta, config.ropeStyle);
    const { dim, vocabSize, nLayers } = config;
    if (!weights.embeddingTable || weights.embedding.length > 0) {
      expectLength("token_embd", weights.embedding, vocabSize * dim, [vocabSize, dim]);
    }
    expectLength("output_norm", weights.outputNorm, dim, [dim]);
    if (weights.output.outFeatures !== vocabSize || weights.output.inFeatures !== dim) {
      throw shapeError("output", [vocabSize, dim], [weights.output.outFeatures, weights.output.inFeatures]);
    }
    if (weights.layers.length !== nLayers) {
      throw new LowbitError("E_SHAPE_MISMATCH", `model has ${weights.layers.length} layers, config says ${nLayers}`);
    }
    weights.layers.forEach((l, i) => {
      if (l) this.checkLayer(i, l);
    });
  }

  private checkLayer(i: number, l: DecoderLayerWeights): void {
    const dim = this.config.dim;
    expectLength(`blk.${i}.attn_norm`, l.attnNorm, dim, [dim]);
    expectLength(`blk.${i}.ffn_norm`, l.ffnNorm, dim, [dim]);
    for (const name of LINEAR_NAMES) {
      const lin = l.linears[name];
      if (!lin) throw new LowbitError("E_MISSING_TENSOR", `layer ${i} has no linear "${name}"`);
      checkLinearShape(this.config, i, name, lin);
    }
  }

  get nLayers(): number {
    return this.config.nLayers;
  }

  // ---- layer residency (lazy loading) ----

  isLayerLoaded(i: number): boolean {
    return this.weights.layers[i] !== undefined;
  }

  /** Makes layer i resident, loading it through the model's loader when needed. */
  async ensureLayer(i: number): Promise<DecoderLayerWeights> {
    this.checkLayerIndex(i);
    const have = this.weights.layers[i];
    if (have) return have;
    if (!this.loader) throw new LowbitError("E_INTERNAL", `layer ${i} is not loaded and the model has no loader`);
    const l = await this.loader(i);
    this.checkLayer(i, l);
    this.weights.layers[i] = l;
    return l;
  }

  /** Loads every layer (for lazily opened models). */
  async loadAll(): Promise<void> {
    for (let i = 0; i < this.config.nLayers; i++) await this.ensureLayer(i);
  }

  /**
   * Drops layer i from memory (disposing its linears); a lazily opened model reloads it from disk
   * on the next ensureLayer(i). Throws for models without a loader (nothing to reload from).
   */
  releaseLayer(i: number): void {
    this.checkLayerIndex(i);
    if (!this.loader) throw new LowbitError("E_INVALID_ARGUMENT", `layer ${i} cannot be released: the model has no loader`);
    const l = this.weights.layers[i];
    if (!l) return;
    for (const name of LINEAR_NAMES) l.linears[name].dispose?.();
    this.weights.layers[i] = undefined;
  }

  private layer(i: number): DecoderLayerWeights {
    this.checkLayerIndex(i);
    const l = this.weights.layers[i];
    if (!l) {
      throw new LowbitError("E_INVALID_ARGUMENT", `layer ${i} is not loaded; await model.ensureLayer(${i}) or model.loadAll() first`);
    }
    return l;
  }

  private checkLayerIndex(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.config.nLayers) {
      throw new LowbitError("E_INVALID_ARGUMENT", `layer index ${i} out of range [0, ${this.config.nLayers})`);
    }
  }

  // ---- backends ----

  getLinear(layer: number, name: LinearName): Linear {
    return this.layer(layer).linears[name];
  }

  /**
   * Replaces one projection's backend (mixed precision). The shape must match; the old backend is
   * returned, not disposed.
   */
  setLinear(layer: number, name: LinearName, linear: Linear): Linear {
    const l = this.layer(layer);
    checkLinearShape(this.config, layer, name, linear);
    const old = l.linears[name];
    l.linears[name] = linear;
    return old;
  }

  /** Replaces the classifier backend; returns the old one. */
  setClassifier(linear: Linear): Linear {
    const { vocabSize, dim } = this.config;
    if (linear.outFeatures !== vocabSize || linear.inFeatures !== dim) {
      throw shapeError("output", [vocabSize, dim], [linear.outFeatures, linear.inFeatures]);
    }
    const old = this.weights.output;
    this.weights.output = linear;
    this.weights.outputShared = false;
    return old;
  }

  /** The layer's RMSNorm weights (live references: AWQ folds scales into them in place). */
  layerNorms(layer: number): { attnNorm: Float32Array; ffnNorm: Float32Array } {
    const l = this.layer(layer);
    return { attnNorm: l.attnNorm, ffnNorm: l.ffnNorm };
  }

  /** Bytes of weight storage: linears, classifier, norms and embedding (resident layers only). */
  get storageBytes(): number {
    const w = this.weights;
    let bytes = w.embedding.byteLength + (w.embeddingTable?.storageBytes ?? 0) + w.outputNorm.byteLength;
    if (!w.outputShared) bytes += w.output.storageBytes;
    for (const l of w.layers) {
      if (!l) continue;
      bytes += l.attnNorm.byteLength + l.ffnNorm.byteLength;
      for (const name of LINEAR_NAMES) bytes += l.linears[name].storageBytes;
    }
    return bytes;
  }

  /** A description of each layer's backends, e.g. for reports. */
  backends(): Array<Record<LinearName, string> | undefined> {
    return this.weights.layers.map((l) => {
      if (!l) return undefined;
      const r = {} as Record<LinearName, string>;
      for (const n of LINEAR_NAMES) r[n] = l.linears[n].kind;
      return r;
    });
  }

  /** Frees the kernel memory of every backend. */
  dispose(): void {
    for (const l of this.weights.layers) {
      if (l) for (const name of LINEAR_NAMES) l.linears[name].dispose?.();
    }
    this.weights.output.dispose?.();
    this.residentKV.dispose();
  }

  /** dispose() and close the files a lazily opened model reads layers from. */
  async close(): Promise<void> {
    this.dispose();
    await this.closeSource?.();
  }

  // ---- hooks ----

  /**
   * Registers a capture hook on every linear and decoder layer; returns its unregister function.
   * With `linearInputs` the hook also sees each linear's input before the linear runs
   * ("linear-input" events).
   */
  registerHook(hook: CaptureHook, options: { linearInputs?: boolean } = {}): () => void {
    this.hooks.add(hook);
    if (options.linearInputs) this.inputHooks.add(hook);
    return () => {
      this.hooks.delete(hook);
      this.inputHooks.delete(hook);
    };
  }

  private emit(event: CaptureEvent): void {
    for (const h of this.hooks) h(event);
  }

  // ---- per-layer API ----

  /** Token embeddings, [tokens.length, dim]. */
  embed(tokens: ArrayLike<number>): Float32Array {
    const { dim, vocabSize } = this.config;
    const out = new Float32Array(tokens.length * dim);
    const emb = this.weights.embedding;
    const table = this.weights.embeddingTable;
    for (let t = 0; t < tokens.length; t++) {
      const id = tokens[t]!;
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
        throw new LowbitError("E_INVALID_ARGUMENT", `token id ${id} at index ${t} is outside the vocabulary [0, ${vocabSize})`);
      }
      if (table && emb.length === 0) table.row(id, out, t * dim);
      else out.set(emb.subarray(id * dim, (id + 1) * dim), t * dim);
    }
    return out;
  }

  /** The whole token embedding [vocabSize, dim] as f32 (decoded when stored compactly). */
  embeddingWeight(): Float32Array {
    const w = this.weights;
    if (w.embedding.length > 0 || !w.embeddingTable) return w.embedding;
    const { vocabSize, dim } = this.config;
    const out = new Float32Array(vocabSize * dim);
    for (let id = 0; id < vocabSize; id++) w.embeddingTable.row(id, out, id * dim);
    return out;
  }

  /**
   * Runs decoder layer i on hidden states [batch * seqLen, dim] holding `batch` windows of
   * `seqLen` tokens each. Attention is causal within each window; every window starts a fresh
   * context at position 0. Returns the layer's output hidden states (a new array).
   */
  runLayer(i: number, hidden: Float32Array, batch: number, seqLen: number): Float32Array {
    const rows = batch * seqLen;
    if (hidden.length !== rows * this.config.dim) {
      throw new LowbitError(
        "E_SHAPE_MISMATCH",
        `runLayer(${i}): hidden has ${hidden.length} values, expected batch*seqLen*dim = ${batch}*${seqLen}*${this.config.dim}`,
      );
    }
    return this.decoderLayer(i, hidden, rows, { kind: "windows", seqLen });
  }

  /** Final RMSNorm of [rows, dim] hidden states (a new array). */
  finalNorm(hidden: Float32Array, rows: number): Float32Array {
    return rmsNorm(hidden, this.weights.outputNorm, rows, this.config.dim, this.config.normEps);
  }

  /** Final norm + classifier: logits [rows, vocabSize]. */
  head(hidden: Float32Array, rows: number): Float32Array {
    const normed = this.finalNorm(hidden, rows);
    return this.weights.output.forward(normed, rows, new Float32Array(rows * this.config.vocabSize));
  }

  // ---- sequence forward with KV cache ----

  createCache(maxLength?: number): KVCache {
    return new KVCache(this.config, maxLength ?? this.config.maxSeqLen);
  }

  /**
   * Appends `tokens` to the sequence in `cache` (all of them through each layer at once: batched
   * prefill through the linears' GEMM path) and returns logits: of the last token ([vocabSize]),
   * of every token ([tokens.length, vocabSize]) or none.
   */
  forward(tokens: ArrayLike<number>, cache: KVCache, logits: LogitsMode = "last"): Float32Array {
    const T = tokens.length;
    if (T === 0) throw new LowbitError("E_INVALID_ARGUMENT", "forward: no tokens");
    cache.reserve(T);
    const pos0 = cache.length;
    let x = this.embed(tokens);
    const mode: AttentionMode = { kind: "cache", cache, pos0, resident: this.residentKV };
    for (let i = 0; i < this.config.nLayers; i++) x = this.decoderLayer(i, x, T, mode);
    cache.length = pos0 + T;
    if (logits === "none") return new Float32Array(0);
    if (logits === "all") return this.head(x, T);
    const dim = this.config.dim;
    return this.head(x.subarray((T - 1) * dim, T * dim), 1);
  }

  /**
   * One projection with its hooks. `shared` is the memo of an input several linears read (see
   * Linear.forward): one per input per layer step, made by decoderLayer and dropped after it.
   */
  private linear(layer: number, name: LinearName, lin: Linear, x: Float32Array, rows: number, shared?: Map<string, unknown>): Float32Array {
    if (this.inputHooks.size > 0) for (const h of this.inputHooks) h({ kind: "linear-input", layer, name, input: x, rows });
    const y = lin.forward(x, rows, new Float32Array(rows * lin.outFeatures), shared);
    if (this.hooks.size > 0) this.emit({ kind: "linear", layer, name, input: x, output: y, rows });
    return y;
  }

  private decoderLayer(i: number, x: Float32Array, rows: number, mode: AttentionMode): Float32Array {
    const cfg = this.config;
    const { dim, nHeads, nKvHeads, headDim, normEps } = cfg;
    const L = this.layer(i);
    const lin = L.linears;
    const h = rmsNorm(x, L.attnNorm, rows, dim, normEps);
    // h and h2 each feed several linears: each gets one memo, so e.g. quantized activations are made
    // once. Not for one row (a decode step): there quantizing is cheaper than keeping a copy.
    const hShared = rows >= SHARED_INPUT_MIN_ROWS ? new Map<string, unknown>() : undefined;
    const q = this.linear(i, "attn_q", lin.attn_q, h, rows, hShared);
    const k = this.linear(i, "attn_k", lin.attn_k, h, rows, hShared);
    const v = this.linear(i, "attn_v", lin.attn_v, h, rows, hShared);
    const windowed = cfg.slidingWindow !== undefined && i >= (cfg.slidingWindowFromLayer ?? 0);
    const shape = { nHeads, nKvHeads, headDim, window: windowed ? cfg.slidingWindow : undefined };
    const att = ropeAttention(shape, this.rope, i, q, k, v, rows, mode);
    const o = this.linear(i, "attn_output", lin.attn_output, att, rows);
    const x2 = addVectors(x, o);
    const h2 = rmsNorm(x2, L.ffnNorm, rows, dim, normEps);
    const h2Shared = rows >= SHARED_INPUT_MIN_ROWS ? new Map<string, unknown>() : undefined;
    const g = this.linear(i, "ffn_gate", lin.ffn_gate, h2, rows, h2Shared);
    const u = this.linear(i, "ffn_up", lin.ffn_up, h2, rows, h2Shared);
    const act = siluMul(g, u);
    const d = this.linear(i, "ffn_down", lin.ffn_down, act, rows);
    addVectors(x2, d, x2);
    if (this.hooks.size > 0) this.emit({ kind: "layer", layer: i, input: x, output: x2, rows });
    return x2;
  }
}

function shapeError(name: string, expected: number[], found: number[]): LowbitError {
  return new LowbitError(
    "E_SHAPE_MISMATCH",
    `tensor "${name}": expected shape [${expected.join(", ")}], found [${found.join(", ")}]`,
  );
}

function expectLength(name: string, arr: Float32Array, n: number, shape: number[]): void {
  if (arr.length !== n) {
    throw new LowbitError(
      "E_SHAPE_MISMATCH",
      `tensor "${name}": expected shape [${shape.join(", ")}] (${n} values), found ${arr.length} values`,
    );
  }
}

function checkLinearShape(cfg: LlamaConfig, layer: number, name: LinearName, lin: Linear): void {
  const [o, i] = linearShape(cfg, name);
  if (lin.outFeatures !== o || lin.inFeatures !== i) {
    throw shapeError(`blk.${layer}.${name}.weight`, [o, i], [lin.outFeatures, lin.inFeatures]);
  }
}
