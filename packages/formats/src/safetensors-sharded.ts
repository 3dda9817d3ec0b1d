import { LowbitError } from "@lowbit/tensor";
import { readWholeFile, writeAtomic } from "./file-io";
import {
  checkTensorInputs,
  SafetensorsFile,
  type SafetensorsSource,
  type SafetensorsTensorInput,
  toF32,
  writeSafetensors,
} from "./safetensors";
import type { SafetensorsTensorInfo } from "./safetensors-header";
import { isPlainFileName, nodeFs, nodePath } from "./node-io";

export interface SafetensorsModelTensorInfo extends SafetensorsTensorInfo {
  /** Path of the file holding the tensor. */
  file: string;
}

const INDEX_SUFFIX = ".safetensors.index.json";
const MAX_INDEX_BYTES = 100_000_000;

/**
 * A model stored as one safetensors file or as shards with a `*.safetensors.index.json`; both
 * offer the same interface. Shard headers are all read at open, tensor data on demand.
 */
export class SafetensorsModel implements SafetensorsSource {
  private constructor(
    readonly files: readonly SafetensorsFile[],
    readonly tensors: ReadonlyMap<string, SafetensorsModelTensorInfo>,
    readonly metadata: Record<string, string>,
    /** Path of the index file when sharded. */
    readonly indexPath?: string,
    /** The index's own "metadata" object (e.g. total_size) when sharded. */
    readonly indexMetadata?: Record<string, unknown>,
  ) {}

  static async fromFile(path: string): Promise<SafetensorsModel> {
    const f = await SafetensorsFile.open(path);
    const tensors = new Map<string, SafetensorsModelTensorInfo>();
    for (const [name, info] of f.tensors) tensors.set(name, { ...info, file: path });
    return new SafetensorsModel([f], tensors, { ...f.metadata });
  }

  static async fromIndex(indexPath: string): Promise<SafetensorsModel> {
    const bytes = await readWholeFile(indexPath, MAX_INDEX_BYTES, "E_SAFETENSORS_HEADER");
    const { weightMap, metadata: indexMetadata } = parseIndex(bytes, indexPath);
    const { dirname, join } = await nodePath();
    const dir = dirname(indexPath);
    const byShard = new Map<string, SafetensorsFile>();
    try {
      for (const shard of new Set(weightMap.values())) byShard.set(shard, await SafetensorsFile.open(join(dir, shard)));
      const tensors = new Map<string, SafetensorsModelTensorInfo>();
      const metadata: Record<string, string> = {};
      for (const f of byShard.values()) Object.assign(metadata, f.metadata);
      for (const [name, shard] of weightMap) {
        const f = byShard.get(shard)!;
        const info = f.tensors.get(name);
        if (!info) {
          throw new LowbitError("E_MISSING_TENSOR", `${indexPath}: weight_map puts "${name}" in ${shard}, which has no such tensor`);
        }
        tensors.set(name, { ...info, file: f.path });
      }
      return new SafetensorsModel([...byShard.values()], tensors, metadata, indexPath, indexMetadata);
    } catch (e) {
      await Promise.all([...byShard.values()].map((f) => f.close().catch(() => {})));
      throw e;
    }
  }

  private locate(name: string): { file: SafetensorsFile; info: SafetensorsModelTensorInfo } {
    const info = this.tensors.get(name);
    if (!info) throw new LowbitError("E_MISSING_TENSOR", `${this.indexPath ?? this.files[0]?.path}: no tensor named "${name}"`);
    return { file: this.files.find((f) => f.path === info.file)!, info };
  }

  async read(name: string): Promise<Uint8Array> {
    return this.locate(name).file.read(name);
  }

  async readF32(name: string): Promise<Float32Array> {
    const { file, info } = this.locate(name);
    return toF32(await file.read(name), info.dtype, `${file.path}: tensor "${name}"`);
  }

  async close(): Promise<void> {
    await Promise.all(this.files.map((f) => f.close()));
  }
}

function parseIndex(
  bytes: Uint8Array,
  path: string,
): { weightMap: Map<string, string>; metadata: Record<string, unknown> | undefined } {
  const bad = (msg: string): never => {
    throw new LowbitError("E_SAFETENSORS_HEADER", `${path}: ${msg}`);
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (e) {
    bad(`not valid JSON (${(e as Error).message})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return bad("not a JSON object");
  const { weight_map: wm, metadata } = parsed as Record<string, unknown>;
  if (typeof wm !== "object" || wm === null || Array.isArray(wm)) return bad("weight_map is missing or not an object");
  const weightMap = new Map<string, string>();
  for (const [name, shard] of Object.entries(wm)) {
    if (typeof shard !== "string" || shard.length === 0) bad(`weight_map["${name}"] is not a file name`);
    const s = shard as string;
    if (!isPlainFileName(s)) {
      bad(`weight_map["${name}"] = "${s}" is not a plain file name inside the model folder`);
    }
    weightMap.set(name, s);
  }
  if (weightMap.size === 0) bad("weight_map is empty");
  const meta = typeof metadata === "object" && metadata !== null && !Array.isArray(metadata) ? metadata : undefined;
  return { weightMap, metadata: meta as Record<string, unknown> | undefined };
}

/**
 * Opens a safetensors model: a `.safetensors` file, a `*.safetensors.index.json`, or a folder
 * holding `model.safetensors.index.json`, `model.safetensors`, or exactly one of either kind.
 */
export async function openSafetensorsModel(dirOrFile: string): Promise<SafetensorsModel> {
  const { readdir, stat } = await nodeFs();
  const { join } = await nodePath();
  let isDir: boolean;
  try {
    isDir = (await stat(dirOrFile)).isDirectory();
  } catch (e) {
    throw new LowbitError("E_FILE_NOT_FOUND", `${dirOrFile}: not found`, { cause: e });
  }
  if (!isDir) {
    return dirOrFile.endsWith(".json") ? SafetensorsModel.fromIndex(dirOrFile) : SafetensorsModel.fromFile(dirOrFile);
  }
  const names = await readdir(dirOrFile);
  if (names.includes(`model${INDEX_SUFFIX}`)) return SafetensorsModel.fromIndex(join(dirOrFile, `model${INDEX_SUFFIX}`));
  if (names.includes("model.safetensors")) return SafetensorsModel.fromFile(join(dirOrFile, "model.safetensors"));
  const indexes = names.filter((n) => n.endsWith(INDEX_SUFFIX));
  if (indexes.length === 1) return SafetensorsModel.fromIndex(join(dirOrFile, indexes[0]!));
  const singles = names.filter((n) => n.endsWith(".safetensors"));
  if (indexes.length === 0 && singles.length === 1) return SafetensorsModel.fromFile(join(dirOrFile, singles[0]!));
  throw new LowbitError(
    "E_FILE_NOT_FOUND",
    `${dirOrFile}: expected model.safetensors.index.json, model.safetensors, or a single .safetensors file; found ` +
      `${indexes.length} index files and ${singles.length} .safetensors files`,
  );
}

export interface ShardedWriteOptions {
  /** Largest sum of tensor bytes per shard; a single larger tensor gets a shard of its own. */
  maxShardBytes: number;
  metadata?: Record<string, string>;
  /** File name stem: `<baseName>-00001-of-00002.safetensors`, `<baseName>.safetensors.index.json`. */
  baseName?: string;
}

export interface ShardedWriteResult {
  /** Shard file names (inside `dir`), in order. */
  shards: string[];
  /** The index file name, or undefined when everything fit in one `<baseName>.safetensors`. */
  index?: string;
}

/** Splits tensors, in order, into groups of at most `maxBytes` (oversized tensors alone). */
export function planShards<T extends { data: ArrayBufferView }>(tensors: readonly T[], maxBytes: number): T[][] {
  const shards: T[][] = [];
  let current: T[] = [];
  let size = 0;
  for (const t of tensors) {
    if (current.length > 0 && size + t.data.byteLength > maxBytes) {
      shards.push(current);
      current = [];
      size = 0;
    }
    current.push(t);
    size += t.data.byteLength;
  }
  if (current.length > 0 || shards.length === 0) shards.push(current);
  return shards;
}

/**
 * Writes a model as safetensors shards of at most `maxShardBytes` tensor bytes plus the
 * `<baseName>.safetensors.index.json` (as Hugging Face `save_pretrained` does: a model that fits in
 * one shard is written as `<baseName>.safetensors` with no index). Every file is written atomically,
 * the index last; stale shards and index files of the same base name left from an earlier write
 * are removed afterwards.
 */
export async function writeShardedSafetensors(
  dir: string,
  tensors: readonly SafetensorsTensorInput[],
  options: ShardedWriteOptions,
): Promise<ShardedWriteResult> {
  const { maxShardBytes, metadata, baseName = "model" } = options;
  if (!Number.isSafeInteger(maxShardBytes) || maxShardBytes <= 0) {
    throw new LowbitError("E_INVALID_ARGUMENT", `maxShardBytes must be a positive integer, got ${maxShardBytes}`);
  }
  if (!isPlainFileName(baseName)) {
    throw new LowbitError("E_INVALID_ARGUMENT", `baseName "${baseName}" must be a plain file name`);
  }
  checkTensorInputs(tensors, dir);
  const { mkdir } = await nodeFs();
  const { join } = await nodePath();
  await mkdir(dir, { recursive: true });
  const groups = planShards(tensors, maxShardBytes);
  const pad = (i: number) => String(i).padStart(5, "0");
  const shards =
    groups.length === 1
      ? [`${baseName}.safetensors`]
      : groups.map((_, i) => `${baseName}-${pad(i + 1)}-of-${pad(groups.length)}.safetensors`);
  for (let i = 0; i < groups.length; i++) await writeSafetensors(join(dir, shards[i]!), groups[i]!, metadata);
  let index: string | undefined;
  if (groups.length > 1) {
    index = `${baseName}${INDEX_SUFFIX}`;
    const weightMap: Record<string, string> = Object.create(null);
    let total = 0;
    const entries: Array<[string, string]> = [];
    groups.forEach((g, i) => {
      for (const t of g) {
        entries.push([t.name, shards[i]!]);
        total += t.data.byteLength;
      }
    });
    entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    for (const [k, v] of entries) weightMap[k] = v;
    const json = JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2);
    await writeAtomic(join(dir, index), (sink) => sink.write(new TextEncoder().encode(`${json}\n`)));
  }
  await removeStale(dir, baseName, new Set([...shards, ...(index ? [index] : [])]));
  return { shards, index };
}

async function removeStale(dir: string, baseName: string, keep: Set<string>): Promise<void> {
  const esc = baseName.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const ours = new RegExp(`^${esc}(-\\d{5}-of-\\d{5})?\\.safetensors(\\.index\\.json)?$`);
  const { readdir, rm } = await nodeFs();
  const { join } = await nodePath();
  for (const name of await readdir(dir)) {
    if (ours.test(name) && !keep.has(name)) await rm(join(dir, name), { force: true });
  }
}
