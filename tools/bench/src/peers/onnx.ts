/**
 * onnxruntime as a benchmark peer, for any single-op (or few-op) graph.
 *
 * ONNX models are built programmatically: a hand-written protobuf encoder for the few messages
 * a tiny model needs (ModelProto, GraphProto, NodeProto, TensorProto, ValueInfoProto,
 * AttributeProto), so no protobuf library or Python is involved. The same model bytes then run in
 * onnxruntime-node (native CPU) and onnxruntime-web (its WebAssembly SIMD backend, inside Node),
 * on one thread by default so they compare with lowbit's single-threaded kernels (onnxruntime-node
 * takes more intra-op threads for the thread comparisons).
 *
 * Helpers for the ops the quantization benchmarks use: MatMul (f32), MatMulInteger,
 * DynamicQuantizeMatMul and MatMulNBits (com.microsoft). Field numbers follow onnx.proto3.
 */

// ---- protobuf writer -------------------------------------------------------------------------

class ProtoWriter {
  private chunks: number[] = [];

  varint(v: number): this {
    if (!Number.isSafeInteger(v)) throw new Error(`protobuf varint ${v} is not a safe integer`);
    if (v < 0) {
      // int64 negatives are 10-byte two's complement varints
      let u = BigInt.asUintN(64, BigInt(v));
      while (u >= 0x80n) {
        this.chunks.push(Number(u & 0x7fn) | 0x80);
        u >>= 7n;
      }
      this.chunks.push(Number(u));
      return this;
    }
    while (v >= 0x80) {
      this.chunks.push((v % 128) | 0x80);
      v = Math.floor(v / 128);
    }
    this.chunks.push(v);
    return this;
  }

  private tag(field: number, wire: number): this {
    return this.varint(field * 8 + wire);
  }

  int(field: number, v: number): this {
    return this.tag(field, 0).varint(v);
  }

  bytes(field: number, data: Uint8Array): this {
    this.tag(field, 2).varint(data.length);
    for (let i = 0; i < data.length; i++) this.chunks.push(data[i]!);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  message(field: number, m: ProtoWriter): this {
    return this.bytes(field, m.finish());
  }

  float(field: number, v: number): this {
    this.tag(field, 5);
    const b = new Uint8Array(new Float32Array([v]).buffer);
    for (const x of b) this.chunks.push(x);
    return this;
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.chunks);
  }
}

// ---- model description -----------------------------------------------------------------------

/** ONNX TensorProto.DataType codes for the element types the benchmarks use. */
export const ONNX_DTYPE = {
  float: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  float16: 10,
} as const;
export type OnnxDType = keyof typeof ONNX_DTYPE;

export interface OnnxInitializer {
  name: string;
  dtype: OnnxDType;
  dims: readonly number[];
  data: ArrayBufferView;
}

export interface OnnxValueInfo {
  name: string;
  dtype: OnnxDType;
  /** A number for a fixed dimension, a string for a symbolic one. */
  dims: ReadonlyArray<number | string>;
}

export type OnnxAttribute = number | string | { ints: number[] } | { floats: number[] } | { float: number };

export interface OnnxNode {
  opType: string;
  domain?: string;
  inputs: readonly string[];
  outputs: readonly string[];
  attributes?: Record<string, OnnxAttribute>;
}

export interface OnnxGraph {
  nodes: readonly OnnxNode[];
  initializers: readonly OnnxInitializer[];
  inputs: readonly OnnxValueInfo[];
  outputs: readonly OnnxValueInfo[];
  /** Opset versions per domain; default { "": 21, "com.microsoft": 1 }. */
  opsets?: Record<string, number>;
}

function tensorProto(t: OnnxInitializer): ProtoWriter {
  const w = new ProtoWriter();
  for (const d of t.dims) w.int(1, d);
  w.int(2, ONNX_DTYPE[t.dtype]);
  w.string(8, t.name);
  w.bytes(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  return w;
}

function valueInfo(v: OnnxValueInfo): ProtoWriter {
  const shape = new ProtoWriter();
  for (const d of v.dims) {
    const dim = new ProtoWriter();
    if (typeof d === "number") dim.int(1, d);
    else dim.string(2, d);
    shape.message(1, dim);
  }
  const tensorType = new ProtoWriter().int(1, ONNX_DTYPE[v.dtype]).message(2, shape);
  const type = new ProtoWriter().message(1, tensorType);
  return new ProtoWriter().string(1, v.name).message(2, type);
}

function attribute(name: string, a: OnnxAttribute): ProtoWriter {
  const w = new ProtoWriter().string(1, name);
  if (typeof a === "number") {
    if (!Number.isInteger(a)) throw new Error(`attribute ${name}: use { float } for non-integer values`);
    return w.int(3, a).int(20, 2); // INT
  }
  if (typeof a === "string") return w.string(4, a).int(20, 3); // STRING
  if ("float" in a) return w.float(2, a.float).int(20, 1); // FLOAT
  if ("ints" in a) {
    for (const v of a.ints) w.int(8, v);
    return w.int(20, 7); // INTS
  }
  for (const v of a.floats) w.float(7, v);
  return w.int(20, 6); // FLOATS
}

function nodeProto(n: OnnxNode, index: number): ProtoWriter {
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, `${n.opType}_${index}`);
  w.string(4, n.opType);
  for (const [k, v] of Object.entries(n.attributes ?? {})) w.message(5, attribute(k, v));
  if (n.domain) w.string(7, n.domain);
  return w;
}

/** Encodes a complete ONNX ModelProto (IR version 10) for the graph. */
export function buildOnnxModel(g: OnnxGraph): Uint8Array {
  const graph = new ProtoWriter();
  for (const [i, n] of g.nodes.entries()) graph.message(1, nodeProto(n, i));
  graph.string(2, "lowbit_bench");
  for (const t of g.initializers) graph.message(5, tensorProto(t));
  for (const v of g.inputs) graph.message(11, valueInfo(v));
  for (const v of g.outputs) graph.message(12, valueInfo(v));
  const model = new ProtoWriter().int(1, 10).string(2, "lowbit-bench");
  for (const [domain, version] of Object.entries(g.opsets ?? { "": 21, "com.microsoft": 1 })) {
    const op = new ProtoWriter();
    if (domain) op.string(1, domain);
    op.int(2, version);
    model.message(8, op);
  }
  model.message(7, graph);
  return model.finish();
}

// ---- common single-op models -----------------------------------------------------------------

/** Transposes a row-major [rows, cols] matrix (weights are [out, in]; ONNX MatMul wants [in, out]). */
export function transpose<T extends Float32Array | Int8Array | Uint8Array>(w: T, rows: number, cols: number): T {
  const out = new (w.constructor as new (n: number) => T)(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = w[r * cols + c]!;
  return out;
}

/** Y[m, n] = X[m, k] · W^T, W f32 [n, k]. */
export function matmulF32Model(w: Float32Array, n: number, k: number): Uint8Array {
  return buildOnnxModel({
    nodes: [{ opType: "MatMul", inputs: ["X", "B"], outputs: ["Y"] }],
    initializers: [{ name: "B", dtype: "float", dims: [k, n], data: transpose(w, n, k) }],
    inputs: [{ name: "X", dtype: "float", dims: ["M", k] }],
    outputs: [{ name: "Y", dtype: "float", dims: ["M", n] }],
  });
}

/**
 * Y i32 [m, n] = (A - a_zero) · (B - b_zero), A uint8 or int8 [m, k] input, W int8 [n, k]
 * weights (stored transposed as B [k, n]), b_zero 0 (per column when `perColumnZero`).
 */
export function matmulIntegerModel(w: Int8Array, n: number, k: number, aType: "uint8" | "int8" = "uint8"): Uint8Array {
  return buildOnnxModel({
    nodes: [{ opType: "MatMulInteger", inputs: ["A", "B", "a_zero", "b_zero"], outputs: ["Y"] }],
    initializers: [
      { name: "B", dtype: "int8", dims: [k, n], data: transpose(w, n, k) },
      { name: "a_zero", dtype: aType, dims: [], data: aType === "uint8" ? new Uint8Array([128]) : new Int8Array([0]) },
      { name: "b_zero", dtype: "int8", dims: [], data: new Int8Array([0]) },
    ],
    inputs: [{ name: "A", dtype: aType, dims: ["M", k] }],
    outputs: [{ name: "Y", dtype: "int32", dims: ["M", n] }],
  });
}

/**
 * com.microsoft DynamicQuantizeMatMul: X f32 is quantized to uint8 per tensor at run time,
 * W int8 [n, k] with per-output-channel scales (symmetric, zero point 0): the W8A8 peer.
 */
export function dynamicQuantizeMatMulModel(w: Int8Array, scales: Float32Array, n: number, k: number): Uint8Array {
  return buildOnnxModel({
    nodes: [
      {
        opType: "DynamicQuantizeMatMul",
        domain: "com.microsoft",
        inputs: ["X", "B", "b_scale", "b_zero"],
        outputs: ["Y"],
      },
    ],
    initializers: [
      { name: "B", dtype: "int8", dims: [k, n], data: transpose(w, n, k) },
      { name: "b_scale", dtype: "float", dims: [n], data: scales },
      { name: "b_zero", dtype: "int8", dims: [n], data: new Int8Array(n) },
    ],
    inputs: [{ name: "X", dtype: "float", dims: ["M", k] }],
    outputs: [{ name: "Y", dtype: "float", dims: ["M", n] }],
  });
}

/**
 * com.microsoft MatMulNBits: B uint8 [n, ceil(k/block), block*bits/8] (low nibble first),
 * scales f32 [n * blocks], optional packed zero points (uint8 [n, ceil(blocks*bits/8)]).
 */
export function matMulNBitsModel(opts: {
  n: number;
  k: number;
  bits: number;
  blockSize: number;
  packed: Uint8Array;
  scales: Float32Array;
  zeroPoints?: Uint8Array;
  accuracyLevel?: number;
}): Uint8Array {
  const { n, k, bits, blockSize } = opts;
  const blocks = Math.ceil(k / blockSize);
  const inits: OnnxInitializer[] = [
    { name: "B", dtype: "uint8", dims: [n, blocks, (blockSize * bits) / 8], data: opts.packed },
    { name: "scales", dtype: "float", dims: [n * blocks], data: opts.scales },
  ];
  const inputs = ["X", "B", "scales"];
  if (opts.zeroPoints) {
    inits.push({ name: "zero_points", dtype: "uint8", dims: [opts.zeroPoints.length], data: opts.zeroPoints });
    inputs.push("zero_points");
  }
  const attributes: Record<string, OnnxAttribute> = { K: k, N: n, bits, block_size: blockSize };
  if (opts.accuracyLevel !== undefined) attributes["accuracy_level"] = opts.accuracyLevel;
  return buildOnnxModel({
    nodes: [{ opType: "MatMulNBits", domain: "com.microsoft", inputs, outputs: ["Y"], attributes }],
    initializers: inits,
    inputs: [{ name: "X", dtype: "float", dims: ["M", k] }],
    outputs: [{ name: "Y", dtype: "float", dims: ["M", n] }],
  });
}

// ---- sessions ---------------------------------------------------------------------------------

export type OnnxRuntimeName = "onnxruntime-node" | "onnxruntime-web";

export type OnnxFeedData = Float32Array | Int8Array | Uint8Array | Int32Array;

/** One loaded model in one runtime. `run` returns the first output's data. */
export interface OnnxPeerSession {
  readonly runtime: OnnxRuntimeName;
  run(feeds: Record<string, { data: OnnxFeedData; dims: readonly number[] }>): Promise<OnnxFeedData>;
  release(): Promise<void>;
}

function tensorType(data: OnnxFeedData): "float32" | "int8" | "uint8" | "int32" {
  if (data instanceof Float32Array) return "float32";
  if (data instanceof Int8Array) return "int8";
  if (data instanceof Uint8Array) return "uint8";
  return "int32";
}

type OrtModule = typeof import("onnxruntime-node");

let webConfigured = false;

async function loadRuntime(runtime: OnnxRuntimeName): Promise<OrtModule> {
  if (runtime === "onnxruntime-node") return (await import("onnxruntime-node")) as unknown as OrtModule;
  const ort = (await import("onnxruntime-web")) as unknown as OrtModule & {
    env: { wasm: { numThreads: number; simd?: boolean; proxy?: boolean }; logLevel?: string };
  };
  if (!webConfigured) {
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.proxy = false;
    webConfigured = true;
  }
  return ort;
}

/**
 * Loads `model` into onnxruntime-node (CPU execution provider) or onnxruntime-web (wasm
 * execution provider, SIMD build), one inter-op thread, all graph optimisations on. Intra-op
 * threads: `options.threads` (default 1) for onnxruntime-node; onnxruntime-web always runs on one
 * thread here (its thread count is process-wide and fixed at its first session). Throws with the
 * runtime's own message when the op is not supported.
 */
export async function createOnnxSession(
  model: Uint8Array,
  runtime: OnnxRuntimeName,
  options: { threads?: number } = {},
): Promise<OnnxPeerSession> {
  const threads = options.threads ?? 1;
  if (runtime === "onnxruntime-web" && threads !== 1) {
    throw new Error(`onnxruntime-web runs on 1 thread in this harness, asked for ${threads}`);
  }
  const ort = await loadRuntime(runtime);
  const session = await ort.InferenceSession.create(model, {
    executionProviders: [runtime === "onnxruntime-node" ? "cpu" : "wasm"],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: "all",
    executionMode: "sequential",
  });
  const outName = session.outputNames[0]!;
  return {
    runtime,
    async run(feeds) {
      const inputs: Record<string, InstanceType<OrtModule["Tensor"]>> = {};
      for (const [name, f] of Object.entries(feeds)) {
        inputs[name] = new ort.Tensor(tensorType(f.data), f.data, f.dims);
      }
      const result = await session.run(inputs);
      const out = result[outName]!;
      const data = out.data as OnnxFeedData;
      // onnxruntime-node hands out views onto native memory; keep nothing else alive
      return data;
    },
    async release() {
      await session.release();
    },
  };
}

/** Runtime versions, for the benchmark report. */
export async function onnxRuntimeVersions(): Promise<Record<OnnxRuntimeName, string>> {
  const node = await loadRuntime("onnxruntime-node");
  const web = await loadRuntime("onnxruntime-web");
  return {
    "onnxruntime-node": String((node.env as { versions?: { node?: string } }).versions?.node ?? "?"),
    "onnxruntime-web": String((web.env as { versions?: { web?: string } }).versions?.web ?? "?"),
  };
}
