import { LowbitError } from "@lowbit/tensor";
import { asBytes, type FileSink, LITTLE_ENDIAN, writeAtomic } from "./file-io";
import { encodeLlama2cHeader, type Llama2cConfig, llama2cLayout } from "./llama2c";

/** A tensor to write: its values (row-major, [out, in] for matrices) and, optionally, its shape to check. */
export interface Llama2cTensorInput {
  shape?: readonly number[];
  data: Float32Array;
}

export interface Llama2cWriteOptions {
  /**
   * RoPE base of the freq_cis tables stored between the weights and the classifier (run.c and the
   * readers ignore them; default 10000).
   */
  ropeTheta?: number;
}

/** What goes into the file after the header, in order. */
type Part = { kind: "tensor"; data: Float32Array } | { kind: "freqCis"; table: "real" | "imag" };

/**
 * Checks `tensors` against the layout `config` implies and lists what to write. Errors name the
 * tensor: E_MISSING_TENSOR (all missing names), E_DTYPE (not a Float32Array), E_SHAPE_MISMATCH
 * (value count or shape), E_INVALID_ARGUMENT (a tensor the format has no place for).
 */
function plan(
  config: Llama2cConfig,
  tensors: ReadonlyMap<string, Llama2cTensorInput>,
  source: string,
): { header: Uint8Array; fileSize: number; parts: Part[] } {
  const { header, fileSize } = encodeLlama2cHeader(config, source);
  const { entries, freqCisOffset, freqCisFloats } = llama2cLayout(config);
  const missing = entries.filter((e) => !tensors.has(e.name)).map((e) => e.name);
  if (missing.length > 0) {
    throw new LowbitError(
      "E_MISSING_TENSOR",
      `${source}: missing tensor${missing.length > 1 ? "s" : ""} ${missing.map((n) => `"${n}"`).join(", ")} for the llama2.c checkpoint`,
    );
  }
  const expected = new Set(entries.map((e) => e.name));
  for (const name of tensors.keys()) {
    if (expected.has(name)) continue;
    const why =
      name === "output.weight" && config.sharedClassifier
        ? "the config shares the classifier with token_embd.weight (sharedClassifier: true)"
        : "it is not one of the tensors of a llama2.c checkpoint";
    throw new LowbitError("E_INVALID_ARGUMENT", `${source}: tensor "${name}" cannot be written: ${why}`);
  }
  const parts: Part[] = [];
  const freqCis: Part[] = [
    { kind: "freqCis", table: "real" },
    { kind: "freqCis", table: "imag" },
  ];
  for (const e of entries) {
    // the tables sit between output_norm.weight and the separate classifier
    if (e.floatOffset === freqCisOffset + freqCisFloats) parts.push(...freqCis);
    const t = tensors.get(e.name)!;
    const where = `${source}: tensor "${e.name}"`;
    if (!(t.data instanceof Float32Array)) {
      throw new LowbitError("E_DTYPE", `${where}: data must be a Float32Array`);
    }
    if (t.data.length !== e.count) {
      throw new LowbitError(
        "E_SHAPE_MISMATCH",
        `${where} has ${t.data.length} values; expected ${e.count} (shape [${e.shape.join(", ")}])`,
      );
    }
    if (t.shape !== undefined && (t.shape.length !== e.shape.length || t.shape.some((d, i) => d !== e.shape[i]))) {
      throw new LowbitError("E_SHAPE_MISMATCH", `${where} has shape [${t.shape.join(", ")}]; expected [${e.shape.join(", ")}]`);
    }
    parts.push({ kind: "tensor", data: t.data });
  }
  if (!parts.some((p) => p.kind === "freqCis")) parts.push(...freqCis);
  return { header, fileSize, parts };
}

/** freq_cis_real or freq_cis_imag [seq_len, head_size / 2]: cos/sin of p / theta^(2i / head_size). */
function freqCisTable(config: Llama2cConfig, table: "real" | "imag", theta: number): Float32Array {
  const headSize = config.dim / config.nHeads;
  const half = headSize / 2;
  const out = new Float32Array(config.seqLen * half);
  const f = table === "real" ? Math.cos : Math.sin;
  for (let p = 0; p < config.seqLen; p++) {
    for (let i = 0; i < half; i++) out[p * half + i] = f(p / theta ** ((2 * i) / headSize));
  }
  return out;
}

/** Little-endian bytes of f32 values (a view on little-endian hosts). */
function leBytes(data: Float32Array): Uint8Array {
  if (LITTLE_ENDIAN) return asBytes(data);
  const out = new Uint8Array(data.length * 4);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) dv.setFloat32(i * 4, data[i]!, true);
  return out;
}

function checkTheta(theta: number, source: string): number {
  if (!Number.isFinite(theta) || theta <= 0) {
    throw new LowbitError("E_INVALID_ARGUMENT", `${source}: ropeTheta is ${theta}; expected a positive number`);
  }
  return theta;
}

/**
 * The bytes of a legacy llama2.c float32 checkpoint (the layout readLlama2cCheckpoint reads):
 * the 28-byte header (vocab_size negative when `config.sharedClassifier` is false), the weights in
 * run.c's order, the RoPE freq_cis tables, then `output.weight` when the classifier is separate.
 * `tensors` uses the reader's GGUF-style names and must hold exactly the tensors the config needs.
 */
export function encodeLlama2cCheckpoint(
  config: Llama2cConfig,
  tensors: ReadonlyMap<string, Llama2cTensorInput>,
  options: Llama2cWriteOptions = {},
): Uint8Array {
  const source = "llama2.c checkpoint";
  const theta = checkTheta(options.ropeTheta ?? 10000, source);
  const { header, fileSize, parts } = plan(config, tensors, source);
  const out = new Uint8Array(fileSize);
  out.set(header);
  let pos = header.byteLength;
  for (const p of parts) {
    const bytes = leBytes(p.kind === "tensor" ? p.data : freqCisTable(config, p.table, theta));
    out.set(bytes, pos);
    pos += bytes.byteLength;
  }
  if (pos !== fileSize) throw new LowbitError("E_INTERNAL", `${source}: wrote ${pos} of ${fileSize} bytes`);
  return out;
}

/**
 * Writes a llama2.c checkpoint (see encodeLlama2cCheckpoint) to `path` atomically (temporary file,
 * fsync, rename), one tensor at a time: memory use is the largest tensor, not the file. Everything
 * is checked before the file is created.
 */
export async function writeLlama2cCheckpoint(
  path: string,
  config: Llama2cConfig,
  tensors: ReadonlyMap<string, Llama2cTensorInput>,
  options: Llama2cWriteOptions = {},
): Promise<void> {
  const theta = checkTheta(options.ropeTheta ?? 10000, path);
  const { header, fileSize, parts } = plan(config, tensors, path);
  await writeAtomic(path, async (sink: FileSink) => {
    await sink.write(header);
    for (const p of parts) await sink.write(leBytes(p.kind === "tensor" ? p.data : freqCisTable(config, p.table, theta)));
    if (sink.position !== fileSize) throw new LowbitError("E_INTERNAL", `${path}: wrote ${sink.position} of ${fileSize} bytes`);
  });
}

/** A tokenizer to write: raw token bytes and their scores; maxTokenLength defaults to the longest token. */
export interface Llama2cTokenizerInput {
  maxTokenLength?: number;
  tokens: readonly Uint8Array[];
  scores: ArrayLike<number>;
}

/**
 * The bytes of a llama2.c tokenizer (`tokenizer.bin`, what readLlama2cTokenizer reads): int32
 * max_token_length, then per token a float32 score, an int32 byte length and the bytes. Bad input is
 * E_TOKENIZER naming the token.
 */
export function encodeLlama2cTokenizer(tokenizer: Llama2cTokenizerInput, source = "tokenizer"): Uint8Array {
  const bad = (msg: string): never => {
    throw new LowbitError("E_TOKENIZER", `${source}: ${msg}`);
  };
  const { tokens, scores } = tokenizer;
  if (tokens.length === 0) bad("no tokens to write");
  if (scores.length !== tokens.length) bad(`${tokens.length} tokens but ${scores.length} scores`);
  let size = 4;
  let longest = 0;
  tokens.forEach((t, i) => {
    if (!(t instanceof Uint8Array)) bad(`token ${i} is not a Uint8Array`);
    if (Number.isNaN(scores[i])) bad(`token ${i}: score is NaN`);
    size += 8 + t.byteLength;
    longest = Math.max(longest, t.byteLength);
  });
  const maxTokenLength = tokenizer.maxTokenLength ?? Math.max(1, longest);
  if (!Number.isInteger(maxTokenLength) || maxTokenLength <= 0 || maxTokenLength > 0x7fffffff) {
    bad(`maxTokenLength is ${maxTokenLength}; expected a positive 32-bit integer`);
  }
  if (longest > maxTokenLength) {
    const i = tokens.findIndex((t) => t.byteLength === longest);
    bad(`token ${i} is ${longest} bytes, longer than maxTokenLength ${maxTokenLength}`);
  }
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  dv.setInt32(0, maxTokenLength, true);
  let pos = 4;
  tokens.forEach((t, i) => {
    dv.setFloat32(pos, scores[i]!, true);
    dv.setInt32(pos + 4, t.byteLength, true);
    out.set(t, pos + 8);
    pos += 8 + t.byteLength;
  });
  return out;
}

/** Writes a llama2.c tokenizer (see encodeLlama2cTokenizer) to `path` atomically. */
export async function writeLlama2cTokenizer(path: string, tokenizer: Llama2cTokenizerInput): Promise<void> {
  const bytes = encodeLlama2cTokenizer(tokenizer, path);
  await writeAtomic(path, (sink) => sink.write(bytes));
}
