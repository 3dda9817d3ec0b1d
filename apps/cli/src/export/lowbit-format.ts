import { chmod, copyFile, readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { openSafetensorsModel, type SafetensorsSource, type SafetensorsTensorInput } from "@lowbit/formats";
import { packBits, type QuantizedMatrix, unpackBits } from "@lowbit/int4";
import { type LlamaConfig, makeConfig } from "@lowbit/runtime";
import { LowbitError } from "@lowbit/tensor";
import { byteZeros, hasGIdx, loadFloat, loadMatrix, type QuantizedModel } from "../quant/qmodel";
import { VERSION } from "../version";
import { hfConfigJson } from "./hf-config";
import { type StreamedTensor, writeSafetensorsStreaming } from "./stream-safetensors";

/**
 * lowbit's own layout: a folder with config.json (Hugging Face fields for other tools, plus a
 * "lowbit" block with the exact runtime config and quantization settings), model.safetensors with
 * GGUF-style names, and the tokenizer. Each quantized linear `X.weight` is stored as
 *   X.qweight  U8  codes bit-packed low bits first, ceil(rows*cols*bits/8) bytes
 *   X.scales   F32 [rows, groups]
 *   X.zeros    U8 [rows, groups] (F32 when not integer-valued)
 *   X.g_idx    I32 [cols] (act-order only)
 * with bits/group size/shape per tensor in the safetensors metadata ("lowbit.quantized", JSON).
 * Nothing is rounded: reading it back gives the QuantizedModel that was written, bit for bit.
 */

export const LOWBIT_FORMAT_VERSION = 1;

export interface QMeta {
  bits: number;
  group_size: number;
  rows: number;
  cols: number;
  sym: boolean;
}

export function lowbitTensors(m: Pick<QuantizedModel, "floats" | "quantized">): { tensors: SafetensorsTensorInput[]; metadata: Record<string, string> } {
  const tensors: SafetensorsTensorInput[] = [];
  for (const [name, t] of m.floats) tensors.push({ name, dtype: "F32", shape: t.shape, data: t.data });
  const meta: Record<string, QMeta> = {};
  for (const [name, qm] of m.quantized) {
    const stem = name.replace(/\.weight$/, "");
    const ng = qm.cols / qm.groupSize;
    meta[name] = { bits: qm.bits, group_size: qm.groupSize, rows: qm.rows, cols: qm.cols, sym: qm.sym };
    const packed = packBits(qm.q, qm.bits);
    tensors.push({ name: `${stem}.qweight`, dtype: "U8", shape: [packed.length], data: packed });
    tensors.push({ name: `${stem}.scales`, dtype: "F32", shape: [qm.rows, ng], data: qm.scales });
    const integral = qm.zeros.every((z) => Number.isInteger(z) && z >= 0 && z <= 255);
    tensors.push(
      integral
        ? { name: `${stem}.zeros`, dtype: "U8", shape: [qm.rows, ng], data: Uint8Array.from(qm.zeros) }
        : { name: `${stem}.zeros`, dtype: "F32", shape: [qm.rows, ng], data: qm.zeros },
    );
    if (qm.gIdx) tensors.push({ name: `${stem}.g_idx`, dtype: "I32", shape: [qm.cols], data: qm.gIdx });
  }
  return { tensors, metadata: { format: "lowbit", "lowbit.version": String(LOWBIT_FORMAT_VERSION), "lowbit.quantized": JSON.stringify(meta) } };
}

/**
 * The tensors of lowbit's layout as a stream: the same names, order and bytes as lowbitTensors,
 * each tensor's data read (deferred tensors from disk) and packed only when it is written.
 */
export function lowbitStreamedTensors(m: Pick<QuantizedModel, "floats" | "quantized">): { tensors: StreamedTensor[]; metadata: Record<string, string> } {
  const tensors: StreamedTensor[] = [];
  for (const [name, t] of m.floats) tensors.push({ name, dtype: "F32", shape: t.shape, data: () => loadFloat(t) });
  const meta: Record<string, QMeta> = {};
  for (const [name, qm] of m.quantized) {
    const stem = name.replace(/\.weight$/, "");
    const ng = qm.cols / qm.groupSize;
    meta[name] = { bits: qm.bits, group_size: qm.groupSize, rows: qm.rows, cols: qm.cols, sym: qm.sym };
    // the matrix is read once for its tensors (written one after another) and dropped after the last
    let loaded: Promise<QuantizedMatrix> | undefined;
    const take = <T>(part: (m: QuantizedMatrix) => T, last = false) => async (): Promise<T> => {
      loaded ??= loadMatrix(qm);
      const v = part(await loaded);
      if (last) loaded = undefined;
      return v;
    };
    const integral = byteZeros(qm);
    const gIdx = hasGIdx(qm);
    tensors.push({ name: `${stem}.qweight`, dtype: "U8", shape: [Math.ceil((qm.rows * qm.cols * qm.bits) / 8)], data: take((x) => packBits(x.q, qm.bits)) });
    tensors.push({ name: `${stem}.scales`, dtype: "F32", shape: [qm.rows, ng], data: take((x) => x.scales) });
    tensors.push({ name: `${stem}.zeros`, dtype: integral ? "U8" : "F32", shape: [qm.rows, ng], data: take((x) => (integral ? Uint8Array.from(x.zeros) : x.zeros), !gIdx) });
    if (gIdx) tensors.push({ name: `${stem}.g_idx`, dtype: "I32", shape: [qm.cols], data: take((x) => x.gIdx!, true) });
  }
  return { tensors, metadata: { format: "lowbit", "lowbit.version": String(LOWBIT_FORMAT_VERSION), "lowbit.quantized": JSON.stringify(meta) } };
}

/**
 * Writes a QuantizedModel into `dir` (an empty temporary folder; the caller renames it into place),
 * reading deferred tensors one at a time.
 */
export async function writeLowbitModel(dir: string, m: QuantizedModel): Promise<void> {
  const { tensors, metadata } = lowbitStreamedTensors(m);
  await writeSafetensorsStreaming(join(dir, "model.safetensors"), tensors, metadata);
  const config = {
    ...hfConfigJson(m.config, { torchDtype: "float32" }),
    lowbit: {
      format: "lowbit",
      format_version: LOWBIT_FORMAT_VERSION,
      lowbit_version: VERSION,
      config: m.config,
      quantization: m.quantization,
      ...(m.padding ? { padding: m.padding } : {}),
      tokenizer: m.tokenizer ? tokenizerFileName(m) : undefined,
    },
  };
  await import("node:fs/promises").then((fs) => fs.writeFile(join(dir, "config.json"), `${JSON.stringify(config, null, 2)}\n`));
  await copyTokenizer(dir, m);
}

function tokenizerFileName(m: QuantizedModel): string | undefined {
  const t = m.tokenizer;
  if (!t) return undefined;
  if (t.kind === "llama2c") return "tokenizer.bin";
  if (t.kind === "hf") return "tokenizer.json";
  return undefined;
}

/** Copies the tokenizer files next to the weights (llama2.c: tokenizer.bin; HF: its tokenizer files). */
export async function copyTokenizer(dir: string, m: QuantizedModel): Promise<void> {
  const t = m.tokenizer;
  if (!t) return;
  const copy = async (from: string, to: string) => {
    await copyFile(from, to);
    await chmod(to, 0o644);
  };
  if (t.kind === "llama2c") await copy(t.path, join(dir, "tokenizer.bin"));
  else if (t.kind === "hf") for (const f of t.files) await copy(join(t.dir, f), join(dir, basename(f)));
}

/** Reads a folder written by writeLowbitModel back into a QuantizedModel. */
export async function readLowbitModel(dir: string): Promise<QuantizedModel> {
  const cfgJson = JSON.parse(await readFile(join(dir, "config.json"), "utf8")) as { lowbit?: Record<string, unknown> };
  const lb = cfgJson.lowbit;
  if (lb?.format !== "lowbit") {
    throw new LowbitError("E_FORMAT", `${dir}/config.json has no "lowbit" block; this folder was not written by lowbit quantize --format lowbit.`);
  }
  if (lb.format_version !== LOWBIT_FORMAT_VERSION) {
    throw new LowbitError("E_UNSUPPORTED", `${dir}: lowbit format version ${String(lb.format_version)}; this lowbit reads version ${LOWBIT_FORMAT_VERSION}. Upgrade lowbit or re-quantize.`);
  }
  const config: LlamaConfig = makeConfig(lb.config as LlamaConfig);
  const st = await openSafetensorsModel(dir);
  try {
    const { floats, quantized } = await readLowbitTensors(st, dir);
    const tokFile = typeof lb.tokenizer === "string" ? join(dir, lb.tokenizer) : undefined;
    return {
      config,
      floats,
      quantized,
      quantization: lb.quantization as QuantizedModel["quantization"],
      padding: lb.padding as QuantizedModel["padding"],
      tokenizer: tokFile ? (tokFile.endsWith(".bin") ? { kind: "llama2c", path: tokFile } : { kind: "hf", dir, files: ["tokenizer.json"] }) : undefined,
    };
  } finally {
    await st.close();
  }
}

/** The quantized-matrix metadata of a safetensors file in lowbit's layout ("lowbit.quantized"). */
export function lowbitQuantizedMeta(st: SafetensorsSource, where: string): Record<string, QMeta> {
  try {
    return JSON.parse(st.metadata["lowbit.quantized"] ?? "{}") as Record<string, QMeta>;
  } catch (e) {
    throw new LowbitError("E_FORMAT", `${where}: safetensors metadata "lowbit.quantized" is not valid JSON; re-quantize the model.`, { cause: e });
  }
}

/** Reads one quantized matrix (`name` as in the metadata, e.g. `blk.0.attn_q.weight`) of a file in lowbit's layout. */
export async function readLowbitMatrix(st: SafetensorsSource, name: string, q: QMeta, where: string): Promise<QuantizedMatrix> {
  const stem = name.replace(/\.weight$/, "");
  const need = (s: string) => {
    if (!st.tensors.has(`${stem}.${s}`)) {
      throw new LowbitError("E_MISSING_TENSOR", `${where}: missing tensor ${stem}.${s} of quantized ${name}; the output is damaged, re-quantize.`);
    }
    return `${stem}.${s}`;
  };
  const packed = await st.read(need("qweight"));
  const zerosInfo = st.tensors.get(need("zeros"))!;
  const zerosRaw = await st.read(need("zeros"));
  const zeros = zerosInfo.dtype === "U8" ? Float32Array.from(zerosRaw) : new Float32Array(zerosRaw.buffer, zerosRaw.byteOffset, zerosRaw.byteLength / 4);
  const qm: QuantizedMatrix = {
    bits: q.bits,
    groupSize: q.group_size,
    rows: q.rows,
    cols: q.cols,
    sym: q.sym,
    q: unpackBits(packed, q.bits, q.rows * q.cols),
    scales: await st.readF32(need("scales")),
    zeros,
  };
  const gName = `${stem}.g_idx`;
  if (st.tensors.has(gName)) {
    const g = await st.read(gName);
    qm.gIdx = new Int32Array(g.buffer, g.byteOffset, g.byteLength / 4).slice();
  }
  return qm;
}

/** Names of the tensors that make up the quantized matrices of `meta` (qweight, scales, zeros, g_idx). */
export function lowbitQuantizedParts(meta: Record<string, QMeta>): Set<string> {
  const parts = new Set<string>();
  for (const name of Object.keys(meta)) {
    const stem = name.replace(/\.weight$/, "");
    for (const s of ["qweight", "scales", "zeros", "g_idx"]) parts.add(`${stem}.${s}`);
  }
  return parts;
}

/** The float tensors and quantized matrices of a safetensors file in lowbit's layout. */
export async function readLowbitTensors(
  st: SafetensorsSource,
  where: string,
): Promise<{ floats: Map<string, { shape: number[]; data: Float32Array }>; quantized: Map<string, QuantizedMatrix> }> {
  const meta = lowbitQuantizedMeta(st, where);
  const floats = new Map<string, { shape: number[]; data: Float32Array }>();
  const quantized = new Map<string, QuantizedMatrix>();
  const parts = lowbitQuantizedParts(meta);
  for (const [name] of st.tensors) {
    if (parts.has(name)) continue;
    floats.set(name, { shape: [...st.tensors.get(name)!.shape], data: await st.readF32(name) });
  }
  for (const [name, q] of Object.entries(meta)) quantized.set(name, await readLowbitMatrix(st, name, q, where));
  return { floats, quantized };
}
