import { open, readFile, rename, rm } from "node:fs/promises";
import { LowbitError } from "@lowbit/tensor";

/**
 * Training checkpoint file (lowbit QAT checkpoint v1), little-endian:
 *   8 bytes  magic "LBQATCK1"
 *   u32      header length H (a multiple of 4; JSON padded with spaces)
 *   u32      FNV-1a 32-bit hash of the data section
 *   H bytes  JSON header: { version: 1, meta: <anything JSON>, tensors: [{ name, offset, length }] }
 *            (offset and length in f32 elements from the start of the data section)
 *   data     the tensors' f32 values, back to back
 * Written to a temporary file in the same folder, flushed, then renamed over the target, so a
 * reader only ever sees a complete old or a complete new checkpoint.
 */
export interface CheckpointContents {
  meta: unknown;
  tensors: Map<string, Float32Array>;
}

const MAGIC = "LBQATCK1";

export async function writeCheckpoint(path: string, contents: CheckpointContents): Promise<void> {
  const entries: Array<{ name: string; offset: number; length: number }> = [];
  let total = 0;
  for (const [name, data] of contents.tensors) {
    entries.push({ name, offset: total, length: data.length });
    total += data.length;
  }
  let json = JSON.stringify({ version: 1, meta: contents.meta, tensors: entries });
  const jsonBytes0 = new TextEncoder().encode(json);
  const pad = (4 - (jsonBytes0.length % 4)) % 4;
  json += " ".repeat(pad);
  const header = new TextEncoder().encode(json);
  const data = new Uint8Array(total * 4);
  const dv = new DataView(data.buffer);
  let pos = 0;
  for (const t of contents.tensors.values()) {
    for (let i = 0; i < t.length; i++, pos += 4) dv.setFloat32(pos, t[i]!, true);
  }
  const prefix = new Uint8Array(16);
  prefix.set(new TextEncoder().encode(MAGIC), 0);
  const pv = new DataView(prefix.buffer);
  pv.setUint32(8, header.length, true);
  pv.setUint32(12, fnv1a(data), true);
  const tmp = `${path}.tmp-${process.pid}-${Date.now().toString(36)}`;
  try {
    const fh = await open(tmp, "w");
    try {
      await fh.writeFile(prefix);
      await fh.writeFile(header);
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw new LowbitError("E_IO", `${path}: cannot write checkpoint (${(e as Error).message})`, { cause: e });
  }
}

export async function readCheckpoint(path: string): Promise<CheckpointContents> {
  let buf: Uint8Array;
  try {
    buf = await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new LowbitError("E_FILE_NOT_FOUND", `${path}: checkpoint not found`, { cause: e });
    throw new LowbitError("E_IO", `${path}: cannot read checkpoint (${(e as Error).message})`, { cause: e });
  }
  const bad = (what: string): never => {
    throw new LowbitError("E_FORMAT", `${path}: not a valid lowbit QAT checkpoint (${what})`);
  };
  if (buf.length < 16 || new TextDecoder().decode(buf.subarray(0, 8)) !== MAGIC) bad(`expected magic "${MAGIC}"`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const hlen = dv.getUint32(8, true);
  const hash = dv.getUint32(12, true);
  if (16 + hlen > buf.length) bad(`header length ${hlen} exceeds the file size ${buf.length}`);
  let header: { version: number; meta: unknown; tensors: Array<{ name: string; offset: number; length: number }> };
  try {
    header = JSON.parse(new TextDecoder().decode(buf.subarray(16, 16 + hlen)));
  } catch (e) {
    throw new LowbitError("E_FORMAT", `${path}: checkpoint header is not valid JSON`, { cause: e });
  }
  if (header.version !== 1 || !Array.isArray(header.tensors)) bad(`unsupported header version ${header.version}`);
  const data = buf.subarray(16 + hlen);
  let total = 0;
  for (const t of header.tensors) total += t.length;
  if (data.length !== total * 4) bad(`data section has ${data.length} bytes, header describes ${total * 4}`);
  if (fnv1a(data) !== hash) bad("data hash mismatch: the file is corrupt");
  const ddv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const tensors = new Map<string, Float32Array>();
  for (const t of header.tensors) {
    if (!(t.offset >= 0 && t.offset + t.length <= total)) bad(`tensor "${t.name}" lies outside the data section`);
    const arr = new Float32Array(t.length);
    for (let i = 0; i < t.length; i++) arr[i] = ddv.getFloat32((t.offset + i) * 4, true);
    tensors.set(t.name, arr);
  }
  return { meta: header.meta, tensors };
}

function fnv1a(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
