import { LowbitError, Rng } from "@lowbit/tensor";
import { DEFAULT_CALIBRATION_TEXT } from "./default-text";

/** What the dataset helpers need from a tokenizer (the runtime's Tokenizer fits). */
export interface TokenEncoder {
  readonly bosId: number | undefined;
  encode(text: string, options?: { bos?: boolean; eos?: boolean }): number[];
}

/** Calibration windows: `windows` sequences of `seqLen` tokens, row-major. */
export interface CalibrationSet {
  tokens: Int32Array;
  windows: number;
  seqLen: number;
  /** Start of each window in the token stream it was cut from. */
  offsets: Int32Array;
  /** Tokens fed to the model: windows * seqLen. */
  tokensUsed: number;
  /** Distinct positions of the stream the windows cover (windows may overlap). */
  distinctTokens: number;
  /** Length of the stream the windows were sampled from. */
  streamTokens: number;
  seed: number;
}

/** Splits text into documents on blank lines (trimmed, empty ones dropped). */
export function splitOnBlankLines(text: string): string[] {
  return text
    .split(/\r?\n[ \t]*\r?\n/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Reads a file as UTF-8 (Node only; imported on use so the package also loads in browsers). */
async function readUtf8(path: string): Promise<string> {
  const fs = await import("node:fs/promises");
  return fs.readFile(path, "utf8");
}

/** Reads a UTF-8 text file and splits it into documents on blank lines. */
export async function readTextDocuments(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await readUtf8(path);
  } catch (e) {
    throw new LowbitError("E_FILE_NOT_FOUND", `calibration text "${path}" could not be read`, { cause: e });
  }
  return splitOnBlankLines(text);
}

/** Reads JSON Lines, one document per line from the string field `field` (default "text"). */
export async function readJsonlDocuments(path: string, field = "text"): Promise<string[]> {
  let text: string;
  try {
    text = await readUtf8(path);
  } catch (e) {
    throw new LowbitError("E_FILE_NOT_FOUND", `calibration JSONL "${path}" could not be read`, { cause: e });
  }
  return parseJsonl(text, field, path);
}

/** Parses JSON Lines text; errors name the file and line. Blank lines are skipped. */
export function parseJsonl(text: string, field = "text", source = "JSONL"): string[] {
  const docs: string[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === "") continue;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      throw new LowbitError("E_FORMAT", `${source}: line ${i + 1} is not valid JSON`, { cause: e });
    }
    const v = typeof obj === "object" && obj !== null ? (obj as Record<string, unknown>)[field] : undefined;
    if (typeof v !== "string") {
      throw new LowbitError("E_FORMAT", `${source}: line ${i + 1} has no string field "${field}"`);
    }
    if (v.length > 0) docs.push(v);
  }
  return docs;
}

/** The in-package default calibration text (short English prose written for lowbit), as documents. */
export function defaultCalibrationDocuments(): string[] {
  return splitOnBlankLines(DEFAULT_CALIBRATION_TEXT);
}

/** Encodes each document with BOS (as the tokenizer does by default) and concatenates them. */
export function encodeDocuments(docs: readonly string[], tokenizer: TokenEncoder): Int32Array {
  const parts: number[][] = [];
  let n = 0;
  for (const d of docs) {
    const ids = tokenizer.encode(d, { bos: true });
    parts.push(ids);
    n += ids.length;
  }
  const out = new Int32Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export interface SampleOptions {
  windows: number;
  seqLen: number;
  seed: number;
  /** Token put at position 0 of every window (BOS); undefined keeps the stream's token. */
  bosId?: number;
}

/**
 * Cuts `windows` windows of `seqLen` tokens at seeded random offsets in [0, stream - seqLen) (as
 * GPTQ's data loaders do), with token 0 of each window replaced by BOS.
 */
export function sampleWindows(stream: ArrayLike<number>, options: SampleOptions): CalibrationSet {
  const { windows, seqLen, seed } = options;
  if (!(Number.isInteger(windows) && windows > 0 && Number.isInteger(seqLen) && seqLen > 0)) {
    throw new LowbitError(
      "E_INVALID_ARGUMENT",
      `calibration: windows and seqLen must be positive integers, got ${windows} and ${seqLen}`,
    );
  }
  if (stream.length <= seqLen) {
    throw new LowbitError(
      "E_CALIBRATION",
      `calibration: the text has ${stream.length} tokens, need more than one window of ${seqLen}; give more calibration text or a shorter window`,
    );
  }
  const rng = new Rng(seed);
  const tokens = new Int32Array(windows * seqLen);
  const offsets = new Int32Array(windows);
  const covered = new Uint8Array(stream.length);
  for (let w = 0; w < windows; w++) {
    const off = rng.int(stream.length - seqLen);
    offsets[w] = off;
    for (let t = 0; t < seqLen; t++) {
      tokens[w * seqLen + t] = stream[off + t]!;
      covered[off + t] = 1;
    }
    if (options.bosId !== undefined) tokens[w * seqLen] = options.bosId;
  }
  let distinct = 0;
  for (const c of covered) distinct += c;
  return {
    tokens,
    windows,
    seqLen,
    offsets,
    tokensUsed: windows * seqLen,
    distinctTokens: distinct,
    streamTokens: stream.length,
    seed,
  };
}

/**
 * Consecutive non-overlapping windows from the start of a stream (the evaluation protocol): the
 * first `maxTokens` tokens cut into windows of `seqLen` (the partial last one dropped), token 0 of
 * each set to BOS.
 */
export function consecutiveWindows(
  stream: ArrayLike<number>,
  seqLen: number,
  maxTokens: number = stream.length,
  bosId?: number,
): CalibrationSet {
  const n = Math.min(maxTokens, stream.length);
  const windows = Math.floor(n / seqLen);
  if (windows === 0) {
    throw new LowbitError("E_CALIBRATION", `evaluation: ${n} tokens do not fill one window of ${seqLen}`);
  }
  const tokens = new Int32Array(windows * seqLen);
  const offsets = new Int32Array(windows);
  for (let w = 0; w < windows; w++) {
    offsets[w] = w * seqLen;
    for (let t = 0; t < seqLen; t++) tokens[w * seqLen + t] = stream[w * seqLen + t]!;
    if (bosId !== undefined) tokens[w * seqLen] = bosId;
  }
  return {
    tokens,
    windows,
    seqLen,
    offsets,
    tokensUsed: windows * seqLen,
    distinctTokens: windows * seqLen,
    streamTokens: stream.length,
    seed: 0,
  };
}
