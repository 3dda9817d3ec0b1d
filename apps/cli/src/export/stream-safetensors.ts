import { open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { SAFETENSORS_DTYPES, type SafetensorsDType } from "@lowbit/formats";
import { LowbitError } from "@lowbit/tensor";

/**
 * Safetensors writers that take each tensor's data only when its turn comes, so a model larger
 * than memory can be written from tensors read (or packed) one at a time. They write the same bytes
 * as @lowbit/formats' writeSafetensors / writeShardedSafetensors for the same tensors (tested):
 * header JSON in the given order, padded with spaces to 8 bytes; shards split by the same rule;
 * the index with sorted names. Each file goes to a temporary name beside it and is renamed into
 * place only when complete; on any failure the temporary file is removed.
 */

/** A tensor to write: its header fields now, its bytes later (called once, in file order). */
export interface StreamedTensor {
  name: string;
  dtype: SafetensorsDType;
  shape: readonly number[];
  data: () => ArrayBufferView | Promise<ArrayBufferView>;
}

const MAX_HEADER_BYTES = 100_000_000;
let tempCounter = 0;

function byteLength(t: StreamedTensor, where: string): number {
  if (!(t.dtype in SAFETENSORS_DTYPES)) throw new LowbitError("E_DTYPE", `${where}: tensor "${t.name}": unknown dtype ${String(t.dtype)}`);
  let n = SAFETENSORS_DTYPES[t.dtype];
  for (const d of t.shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new LowbitError("E_SHAPE_MISMATCH", `${where}: tensor "${t.name}": bad shape ${JSON.stringify(t.shape)}`);
    n *= d;
  }
  return n;
}

function checkNames(tensors: readonly StreamedTensor[], where: string): void {
  const seen = new Set<string>();
  for (const t of tensors) {
    if (typeof t.name !== "string" || t.name.length === 0 || t.name === "__metadata__") {
      throw new LowbitError("E_INVALID_ARGUMENT", `${where}: tensor "${t.name}": invalid tensor name`);
    }
    if (seen.has(t.name)) throw new LowbitError("E_INVALID_ARGUMENT", `${where}: tensor "${t.name}": duplicate tensor name`);
    seen.add(t.name);
  }
}

function encodeHeader(tensors: readonly StreamedTensor[], sizes: readonly number[], metadata: Record<string, string> | undefined): Uint8Array {
  const obj: Record<string, unknown> = Object.create(null);
  if (metadata && Object.keys(metadata).length > 0) obj.__metadata__ = metadata;
  let pos = 0;
  tensors.forEach((t, i) => {
    obj[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [pos, pos + sizes[i]!] };
    pos += sizes[i]!;
  });
  const json = new TextEncoder().encode(JSON.stringify(obj));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  if (padded > MAX_HEADER_BYTES) throw new LowbitError("E_SAFETENSORS_HEADER", `header of ${padded} bytes exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const out = new Uint8Array(8 + padded).fill(0x20, 8 + json.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  return out;
}

/** Writes `path` through a temporary file beside it: renamed into place when `produce` succeeds, removed when it fails. */
async function writeFileAtomically(path: string, produce: (write: (bytes: Uint8Array) => Promise<void>) => Promise<void>): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${tempCounter++}.tmp`);
  const handle = await open(tmp, "wx");
  let closed = false;
  try {
    await produce(async (bytes) => {
      let off = 0;
      while (off < bytes.byteLength) {
        const { bytesWritten } = await handle.write(bytes, off, bytes.byteLength - off);
        off += bytesWritten;
      }
    });
    await handle.sync();
    await handle.close();
    closed = true;
    await rename(tmp, path);
  } catch (e) {
    if (!closed) await handle.close().catch(() => {});
    await rm(tmp, { force: true }).catch(() => {});
    throw e;
  }
}

/** Writes one safetensors file, asking each tensor for its bytes in turn. */
export async function writeSafetensorsStreaming(path: string, tensors: readonly StreamedTensor[], metadata?: Record<string, string>): Promise<void> {
  checkNames(tensors, path);
  const sizes = tensors.map((t) => byteLength(t, path));
  const header = encodeHeader(tensors, sizes, metadata);
  await writeFileAtomically(path, async (write) => {
    await write(header);
    for (let i = 0; i < tensors.length; i++) {
      const t = tensors[i]!;
      const d = await t.data();
      if (d.byteLength !== sizes[i]) {
        throw new LowbitError("E_SHAPE_MISMATCH", `${path}: tensor "${t.name}": shape ${JSON.stringify(t.shape)} of ${t.dtype} needs ${sizes[i]} bytes, data has ${d.byteLength}`);
      }
      await write(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
    }
  });
}

/**
 * Writes tensors as shards of at most `maxShardBytes` tensor bytes (a larger tensor alone) plus
 * `<baseName>.safetensors.index.json`, or one `<baseName>.safetensors` when they fit, into `dir`
 * (a fresh folder: nothing else is removed from it).
 */
export async function writeShardedSafetensorsStreaming(
  dir: string,
  tensors: readonly StreamedTensor[],
  options: { maxShardBytes: number; metadata?: Record<string, string>; baseName?: string },
): Promise<{ shards: string[]; index?: string }> {
  const { maxShardBytes, metadata, baseName = "model" } = options;
  checkNames(tensors, dir);
  const sizes = tensors.map((t) => byteLength(t, dir));
  const groups: number[][] = [];
  let current: number[] = [];
  let size = 0;
  sizes.forEach((b, i) => {
    if (current.length > 0 && size + b > maxShardBytes) {
      groups.push(current);
      current = [];
      size = 0;
    }
    current.push(i);
    size += b;
  });
  if (current.length > 0 || groups.length === 0) groups.push(current);
  const pad = (i: number) => String(i).padStart(5, "0");
  const shards = groups.length === 1 ? [`${baseName}.safetensors`] : groups.map((_, i) => `${baseName}-${pad(i + 1)}-of-${pad(groups.length)}.safetensors`);
  for (let g = 0; g < groups.length; g++) {
    await writeSafetensorsStreaming(
      join(dir, shards[g]!),
      groups[g]!.map((i) => tensors[i]!),
      metadata,
    );
  }
  if (groups.length === 1) return { shards };
  const index = `${baseName}.safetensors.index.json`;
  const entries: Array<[string, string]> = [];
  let total = 0;
  groups.forEach((g, s) => {
    for (const i of g) {
      entries.push([tensors[i]!.name, shards[s]!]);
      total += sizes[i]!;
    }
  });
  entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const weightMap: Record<string, string> = Object.create(null);
  for (const [k, v] of entries) weightMap[k] = v;
  const json = JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2);
  await writeFileAtomically(join(dir, index), (write) => write(new TextEncoder().encode(`${json}\n`)));
  return { shards, index };
}
