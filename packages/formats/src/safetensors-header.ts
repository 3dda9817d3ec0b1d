import { LowbitError } from "@lowbit/tensor";

/**
 * safetensors dtypes with a whole number of bytes per element (the sub-byte F4/F6 types of recent
 * safetensors versions are not supported and are reported as unknown).
 */
export const SAFETENSORS_DTYPES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  F8_E8M0: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
  C64: 8,
} as const;

export type SafetensorsDType = keyof typeof SAFETENSORS_DTYPES;

export function isSafetensorsDType(s: unknown): s is SafetensorsDType {
  return typeof s === "string" && Object.hasOwn(SAFETENSORS_DTYPES, s);
}

export interface SafetensorsTensorInfo {
  dtype: SafetensorsDType;
  shape: number[];
  byteLength: number;
  /** Absolute byte offset of the tensor's data in the file. */
  offset: number;
}

export interface SafetensorsHeader {
  tensors: Map<string, SafetensorsTensorInfo>;
  metadata: Record<string, string>;
}

/** The reference implementation's limit on the JSON header size. */
export const MAX_HEADER_BYTES = 100_000_000;

const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Validates the 8-byte length prefix against the file size; returns the header length N.
 * Throws E_SAFETENSORS_HEADER when N is over the limit or runs past the file.
 */
export function checkHeaderLength(prefix: Uint8Array, fileSize: number, source: string): number {
  if (fileSize < 8 || prefix.byteLength < 8) {
    throw new LowbitError("E_SAFETENSORS_HEADER", `${source}: file is ${fileSize} bytes, too short for the 8-byte header length`);
  }
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new LowbitError("E_SAFETENSORS_HEADER", `${source}: header length ${n} exceeds the limit of ${MAX_HEADER_BYTES} bytes`);
  }
  if (n < 2n) throw new LowbitError("E_SAFETENSORS_HEADER", `${source}: header length ${n} is too small for a JSON object`);
  if (8n + n > BigInt(fileSize)) {
    throw new LowbitError(
      "E_SAFETENSORS_HEADER",
      `${source}: header length ${n} runs past the end of the file (${fileSize} bytes)`,
    );
  }
  return Number(n);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Parses and validates the JSON header. `bufferSize` is the size of the data buffer (file size
 * minus 8 minus the header). Checks every tensor entry (known dtype, integer shape, offsets,
 * shape x dtype size = byte range, range inside the buffer) and that the ranges, sorted, cover the
 * buffer with no overlaps or holes.
 */
export function parseSafetensorsHeader(json: Uint8Array, bufferSize: number, source: string): SafetensorsHeader {
  const bad = (msg: string): never => {
    throw new LowbitError("E_SAFETENSORS_HEADER", `${source}: ${msg}`);
  };
  if (json[0] !== 0x7b) bad("header does not start with '{'");
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(json));
  } catch (e) {
    bad(`header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(parsed)) return bad("header is not a JSON object");
  const headerBase = 8 + json.byteLength;
  const metadataEntries: Array<[string, string]> = [];
  const tensors = new Map<string, SafetensorsTensorInfo>();
  const ranges: Array<{ name: string; begin: number; end: number }> = [];
  for (const [name, entry] of Object.entries(parsed)) {
    if (name === "__metadata__") {
      if (entry === null) continue;
      if (!isPlainObject(entry)) bad("__metadata__ is not an object of strings");
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== "string") bad(`__metadata__["${k}"] is ${typeof v}; expected a string`);
        metadataEntries.push([k, v as string]);
      }
      continue;
    }
    const where = `tensor "${name}"`;
    if (!isPlainObject(entry)) return bad(`${where}: entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = entry;
    if (!isSafetensorsDType(dtype)) {
      return bad(
        `${where}: unknown dtype ${JSON.stringify(dtype)}; known: ${Object.keys(SAFETENSORS_DTYPES).join(", ")}`,
      );
    }
    if (!Array.isArray(shape)) return bad(`${where}: shape is not an array`);
    let numel = 1;
    for (const d of shape) {
      if (!Number.isSafeInteger(d) || (d as number) < 0) bad(`${where}: shape ${JSON.stringify(shape)} has a bad dimension`);
      numel *= d as number;
      if (!Number.isSafeInteger(numel)) bad(`${where}: shape ${JSON.stringify(shape)} is too large`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2) return bad(`${where}: data_offsets is not [begin, end]`);
    const [begin, end] = offsets as unknown[];
    if (!Number.isSafeInteger(begin) || !Number.isSafeInteger(end)) {
      return bad(`${where}: data_offsets ${JSON.stringify(offsets)} are not integers`);
    }
    const b = begin as number;
    const e = end as number;
    if (b < 0 || e < b) bad(`${where}: data_offsets [${b}, ${e}] are not an increasing range`);
    if (e > bufferSize) bad(`${where}: data_offsets [${b}, ${e}] run past the data buffer (${bufferSize} bytes)`);
    const expected = numel * SAFETENSORS_DTYPES[dtype];
    if (!Number.isSafeInteger(expected) || expected !== e - b) {
      bad(`${where}: shape ${JSON.stringify(shape)} of ${dtype} needs ${expected} bytes but data_offsets span ${e - b}`);
    }
    tensors.set(name, { dtype, shape: shape as number[], byteLength: e - b, offset: headerBase + b });
    ranges.push({ name, begin: b, end: e });
  }
  ranges.sort((x, y) => x.begin - y.begin || x.end - y.end);
  let covered = 0;
  for (const r of ranges) {
    if (r.begin < covered) bad(`tensor "${r.name}": data_offsets [${r.begin}, ${r.end}] overlap the previous tensor`);
    if (r.begin > covered) bad(`tensor "${r.name}": hole in the data buffer between bytes ${covered} and ${r.begin}`);
    covered = r.end;
  }
  if (covered !== bufferSize) {
    bad(`tensors cover ${covered} bytes but the data buffer has ${bufferSize} (trailing bytes not described)`);
  }
  return { tensors, metadata: Object.fromEntries(metadataEntries) };
}

export interface HeaderEntry {
  name: string;
  dtype: SafetensorsDType;
  shape: readonly number[];
  byteLength: number;
}

/**
 * Encodes the header for tensors stored back to back in the given order. Returns the 8-byte length
 * prefix plus the JSON, padded with spaces so the data starts at a multiple of 8.
 */
export function encodeSafetensorsHeader(entries: readonly HeaderEntry[], metadata?: Record<string, string>): Uint8Array {
  const obj: Record<string, unknown> = Object.create(null);
  if (metadata && Object.keys(metadata).length > 0) obj.__metadata__ = metadata;
  let pos = 0;
  for (const t of entries) {
    obj[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [pos, pos + t.byteLength] };
    pos += t.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(obj));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  if (padded > MAX_HEADER_BYTES) {
    throw new LowbitError("E_SAFETENSORS_HEADER", `header of ${padded} bytes exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  const out = new Uint8Array(8 + padded).fill(0x20, 8 + json.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  return out;
}
