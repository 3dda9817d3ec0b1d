import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { openSafetensorsModel } from "@lowbit/formats";
import { packAwq, packGptq, type QuantizedMatrix, unpackAwq, unpackGptq } from "@lowbit/int4";
import { configFromHf, hfNameFromInternal, internalNameFromHf, type LlamaConfig } from "@lowbit/runtime";
import { encodeF16, LowbitError } from "@lowbit/tensor";
import { hasGIdx, linearWeightNames, loadFloat, loadMatrix, permuteRowsF32, permuteRowsQ, type QuantizedModel, ropePermutation } from "../quant/qmodel";
import { VERSION } from "../version";
import { copyTokenizer } from "./lowbit-format";
import { hfConfigJson } from "./hf-config";
import { type StreamedTensor, writeShardedSafetensorsStreaming } from "./stream-safetensors";

/**
 * GPTQ (AutoGPTQ "gptq"/"gptq_v2") and AWQ (AutoAWQ GEMM) folders: Hugging Face names, q/k rows
 * in Hugging Face's half-split RoPE order, packed int32 codes, f16 scales, float tensors in f16,
 * config.json with quantization_config, quantize_config.json (GPTQ) / quant_config.json (AWQ).
 */

export type GptqCheckpointFormat = "gptq" | "gptq_v2";

export interface HfQuantizedResult {
  checkpointFormat?: GptqCheckpointFormat;
  notes: string[];
}

const MAX_SHARD_BYTES = 4 * 1024 ** 3;

/** `model.layers.0.self_attn.q_proj` for `blk.0.attn_q.weight`. */
function hfModule(name: string): string {
  const hf = hfNameFromInternal(name);
  if (!hf) throw new LowbitError("E_INTERNAL", `no Hugging Face name for tensor ${name}`);
  return hf.replace(/\.weight$/, "");
}

function fail(format: string, message: string): never {
  throw new LowbitError("E_UNSUPPORTED", `--format ${format}: ${message}`);
}

/** The group_size a whole model is written with: the requested one, checked against every layer. */
export function uniformGroupSize(m: QuantizedModel, format: string): { bits: number; groupSize: number } {
  const qms = [...m.quantized.entries()];
  const linears = linearWeightNames(m.config);
  const missing = linears.filter((n) => !m.quantized.has(n));
  if (missing.length) {
    fail(format, `every linear layer must be quantized, but ${missing.slice(0, 3).join(", ")}${missing.length > 3 ? ", ..." : ""} ${missing.length === 1 ? "is" : "are"} kept in float (mixed rules). Write mixed-precision models with --format lowbit or gguf.`);
  }
  const bits = new Set(qms.map(([, q]) => q.bits));
  if (bits.size !== 1) fail(format, `all layers need one bit width, got ${[...bits].join(", ")}. Write mixed-precision models with --format lowbit or gguf.`);
  const requested = m.quantization.groupSize;
  for (const [name, q] of qms) {
    const ok = requested <= 0 ? q.groupSize === q.cols : q.groupSize === requested || (requested >= q.cols && q.groupSize === q.cols);
    if (!ok) {
      fail(
        format,
        `${name} has groups of ${q.groupSize} over ${q.cols} inputs, which group_size ${requested} cannot describe. Choose a --group-size that divides every layer's input size (or -1 for per-channel).`,
      );
    }
  }
  return { bits: [...bits][0]!, groupSize: requested <= 0 ? -1 : requested };
}

/**
 * GPTQ v1 stores zero - 1, so a zero point of 0 cannot be written. A group with zero 0 whose codes
 * stay below the largest code is the same group with zero 1 and every code + 1 (value s * (q - z)
 * unchanged): rewritten so. Returns undefined when some group has zero 0 and uses the largest code
 * (no exact v1 encoding exists; such models are written as gptq_v2).
 */
export function remapZerosForV1(qm: QuantizedMatrix): QuantizedMatrix | undefined {
  const ng = qm.cols / qm.groupSize;
  const maxq = (1 << qm.bits) - 1;
  const bad: number[] = [];
  for (let i = 0; i < qm.zeros.length; i++) if (qm.zeros[i] === 0) bad.push(i);
  if (bad.length === 0) return qm;
  const groupOf = qm.gIdx ?? Int32Array.from({ length: qm.cols }, (_, c) => Math.floor(c / qm.groupSize));
  const q = qm.q.slice();
  const zeros = qm.zeros.slice();
  for (const i of bad) {
    const r = Math.floor(i / ng);
    const g = i % ng;
    for (let c = 0; c < qm.cols; c++) {
      if (groupOf[c] !== g) continue;
      if (q[r * qm.cols + c]! >= maxq) return undefined;
    }
    for (let c = 0; c < qm.cols; c++) if (groupOf[c] === g) q[r * qm.cols + c]!++;
    zeros[i] = 1;
  }
  return { ...qm, q, zeros };
}

/**
 * q/k rows converted to Hugging Face's order when the model uses interleaved RoPE pairs: for each
 * tensor name, the row permutation to apply (undefined: keep).
 */
function halfRopePermutations(cfg: LlamaConfig): (name: string) => Int32Array | undefined {
  if (cfg.ropeStyle === "half") return () => undefined;
  const permQ = ropePermutation(cfg.nHeads, cfg.headDim, "toHalf");
  const permK = ropePermutation(cfg.nKvHeads, cfg.headDim, "toHalf");
  return (name) => (/^blk\.\d+\.attn_q\.(weight|bias)$/.test(name) ? permQ : /^blk\.\d+\.attn_k\.(weight|bias)$/.test(name) ? permK : undefined);
}

/** The float tensors in f16 with Hugging Face names, each read (and permuted) when written. */
function floatTensors(m: QuantizedModel, perm: (name: string) => Int32Array | undefined): StreamedTensor[] {
  const out: StreamedTensor[] = [];
  for (const [name, t] of m.floats) {
    const hf = hfNameFromInternal(name);
    if (!hf) throw new LowbitError("E_INTERNAL", `no Hugging Face name for tensor ${name}`);
    const p = /\.bias$/.test(name) ? perm(name) : undefined;
    out.push({
      name: hf,
      dtype: "F16",
      shape: t.shape,
      data: async () => {
        const d = await loadFloat(t);
        return encodeF16(p ? permuteRowsF32(d, p.length, 1, p) : d);
      },
    });
  }
  return out;
}

function lowbitBlock(m: QuantizedModel): Record<string, unknown> {
  return {
    lowbit_version: VERSION,
    quantization: m.quantization,
    ...(m.padding ? { padding: m.padding } : {}),
  };
}

async function writeJson(path: string, value: unknown): Promise<void> {
  await writeFile(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** A quantized matrix read from disk when needed and its rows put in Hugging Face's RoPE order. */
async function loadHalf(qm: QuantizedMatrix, perm: Int32Array | undefined): Promise<QuantizedMatrix> {
  const m = await loadMatrix(qm);
  return perm ? permuteRowsQ(m, perm) : m;
}

/**
 * The packed tensors of one matrix, packed once when the first is written and dropped after the
 * last. `shapes` is undefined when the matrix cannot be packed; `pack` then throws the codec's error.
 */
function packedTensors<P>(
  mod: string,
  parts: ReadonlyArray<{ pick: (p: P) => ArrayBufferView; suffix: string; dtype: "I32" | "F16"; shape: readonly number[] }>,
  pack: () => Promise<P>,
): StreamedTensor[] {
  let packed: Promise<P> | undefined;
  return parts.map((part, i) => ({
    name: `${mod}.${part.suffix}`,
    dtype: part.dtype,
    shape: part.shape,
    data: async () => {
      packed ??= pack();
      const v = part.pick(await packed);
      if (i === parts.length - 1) packed = undefined;
      return v;
    },
  }));
}

/**
 * Writes an AutoGPTQ folder into `dir`. checkpoint_format "gptq" (v1) stores zero - 1, which
 * cannot hold an asymmetric zero point of 0: with "auto" such models are written as "gptq_v2"
 * (and the result says so); asking for "gptq" then is an error naming the tensor. Matrices kept on
 * disk are read one at a time (twice for v1: once to check the zero points, once to write).
 */
export async function writeGptqModel(dir: string, m: QuantizedModel, opts: { checkpointFormat?: GptqCheckpointFormat | "auto" } = {}): Promise<HfQuantizedResult> {
  const { bits, groupSize } = uniformGroupSize(m, "gptq");
  const notes: string[] = [];
  const perm = halfRopePermutations(m.config);
  let format: GptqCheckpointFormat = opts.checkpointFormat === "gptq_v2" ? "gptq_v2" : "gptq";
  if (format === "gptq") {
    // v1: rewrite zero points of 0 exactly where possible (see remapZerosForV1); row order does not change the outcome
    const stuck: string[] = [];
    let moved = 0;
    for (const [name, qm] of m.quantized) {
      if (qm.sym) continue; // symmetric zero points are 2^(bits-1), never 0
      const full = await loadMatrix(qm);
      const r = remapZerosForV1(full);
      if (!r) stuck.push(name);
      else if (r !== full) moved++;
    }
    if (stuck.length && (opts.checkpointFormat ?? "auto") === "auto") {
      format = "gptq_v2";
      notes.push(
        `asymmetric zero points of 0 next to the largest code occur in ${stuck.length} tensor(s) (${stuck.slice(0, 3).join(", ")}${stuck.length > 3 ? ", ..." : ""}), which GPTQ v1 ("gptq", stores zero - 1) cannot hold; wrote checkpoint_format "gptq_v2" (GPTQModel loads it; for AutoGPTQ's v1 quantize with --sym)`,
      );
    } else if (moved) {
      notes.push(`zero points of 0 in ${moved} tensor(s) were stored as zero 1 with codes + 1 (identical values), since GPTQ v1 stores zero - 1`);
    }
  }
  const version = format === "gptq" ? 1 : 2;
  const tensors = floatTensors(m, perm);
  let descAct = false;
  for (const [name, qm] of m.quantized) {
    const mod = hfModule(name);
    if (hasGIdx(qm)) descAct = true;
    const ng = qm.cols / qm.groupSize;
    const packable = (qm.cols * qm.bits) % 32 === 0 && (qm.rows * qm.bits) % 32 === 0;
    const shape = (s: number[]) => (packable ? s : [0]);
    tensors.push(
      ...packedTensors(
        mod,
        [
          { pick: (p) => p.qweight, suffix: "qweight", dtype: "I32", shape: shape([(qm.cols * qm.bits) / 32, qm.rows]) },
          { pick: (p) => p.qzeros, suffix: "qzeros", dtype: "I32", shape: shape([ng, (qm.rows * qm.bits) / 32]) },
          { pick: (p) => p.scales, suffix: "scales", dtype: "F16", shape: shape([ng, qm.rows]) },
          { pick: (p) => p.gIdx, suffix: "g_idx", dtype: "I32", shape: shape([qm.cols]) },
        ],
        async () => {
          const half = await loadHalf(qm, perm(name));
          const v1 = version === 1 ? (remapZerosForV1(half) ?? half) : half;
          return packGptq(v1, { version, name });
        },
      ),
    );
  }
  const quantizeConfig = {
    bits,
    group_size: groupSize,
    damp_percent: m.quantization.dampPercent ?? 0.01,
    desc_act: descAct,
    static_groups: false,
    sym: m.quantization.sym,
    true_sequential: true,
    model_name_or_path: null,
    model_file_base_name: "model",
    quant_method: "gptq",
    checkpoint_format: format,
  };
  await writeShardedSafetensorsStreaming(dir, tensors, { maxShardBytes: MAX_SHARD_BYTES, metadata: { format: "pt" } });
  await writeJson(join(dir, "config.json"), {
    ...hfConfigJson({ ...m.config, ropeStyle: "half" }),
    quantization_config: quantizeConfig,
    lowbit: lowbitBlock(m),
  });
  await writeJson(join(dir, "quantize_config.json"), quantizeConfig);
  await copyTokenizer(dir, m);
  return { checkpointFormat: format, notes };
}

/** Writes an AutoAWQ GEMM folder into `dir` (4-bit only; no act-order), reading matrices kept on disk one at a time. */
export async function writeAwqModel(dir: string, m: QuantizedModel): Promise<HfQuantizedResult> {
  const { bits, groupSize } = uniformGroupSize(m, "awq");
  if (bits !== 4) fail("awq", `AutoAWQ's GEMM layout stores 4-bit weights only, got ${bits} bits. Use --format gptq or lowbit for ${bits} bits.`);
  const perm = halfRopePermutations(m.config);
  const tensors = floatTensors(m, perm);
  for (const [name, qm] of m.quantized) {
    const mod = hfModule(name);
    const ng = qm.cols / qm.groupSize;
    const oc = qm.rows / 8;
    const shape = (s: number[]) => (Number.isInteger(oc) && oc > 0 ? s : [0]);
    tensors.push(
      ...packedTensors(
        mod,
        [
          { pick: (p) => p.qweight, suffix: "qweight", dtype: "I32", shape: shape([qm.cols, oc]) },
          { pick: (p) => p.qzeros, suffix: "qzeros", dtype: "I32", shape: shape([ng, oc]) },
          { pick: (p) => p.scales, suffix: "scales", dtype: "F16", shape: shape([ng, qm.rows]) },
        ],
        async () => packAwq(await loadHalf(qm, perm(name)), { name }),
      ),
    );
  }
  const gs = groupSize < 0 ? Math.max(...[...m.quantized.values()].map((q) => q.cols)) : groupSize;
  await writeShardedSafetensorsStreaming(dir, tensors, { maxShardBytes: MAX_SHARD_BYTES, metadata: { format: "pt" } });
  await writeJson(join(dir, "config.json"), {
    ...hfConfigJson({ ...m.config, ropeStyle: "half" }),
    quantization_config: { quant_method: "awq", zero_point: true, group_size: gs, bits: 4, version: "gemm", modules_to_not_convert: null },
    lowbit: lowbitBlock(m),
  });
  await writeJson(join(dir, "quant_config.json"), { zero_point: true, q_group_size: gs, w_bit: 4, version: "GEMM" });
  await copyTokenizer(dir, m);
  return { notes: [] };
}

/** Reads a GPTQ or AWQ folder (ours or AutoGPTQ/AutoAWQ's) into a QuantizedModel (half-split RoPE order). */
export async function readHfQuantizedModel(dir: string, kind: "gptq" | "awq"): Promise<QuantizedModel> {
  const cfgPath = join(dir, "config.json");
  const json = JSON.parse(await readFile(cfgPath, "utf8")) as Record<string, unknown>;
  let qc = json.quantization_config as Record<string, unknown> | undefined;
  if (!qc && kind === "gptq") qc = JSON.parse(await readFile(join(dir, "quantize_config.json"), "utf8")) as Record<string, unknown>;
  if (!qc) throw new LowbitError("E_CONFIG", `${cfgPath}: no quantization_config; not a ${kind} checkpoint.`);
  const config: LlamaConfig = configFromHf(json, cfgPath);
  const bits = Number(qc.bits ?? qc.w_bit ?? 4);
  const groupSize = Number(qc.group_size ?? qc.q_group_size ?? 128);
  const sym = kind === "gptq" ? qc.sym !== false : qc.zero_point === false;
  const version = kind === "gptq" && qc.checkpoint_format === "gptq_v2" ? 2 : 1;
  if (kind === "awq" && String(qc.version ?? "gemm").toLowerCase() !== "gemm") {
    throw new LowbitError("E_UNSUPPORTED", `${cfgPath}: AWQ version "${String(qc.version)}" is not supported; lowbit reads the GEMM layout.`);
  }
  const st = await openSafetensorsModel(dir);
  try {
    const floats = new Map<string, { shape: number[]; data: Float32Array }>();
    const quantized = new Map<string, QuantizedMatrix>();
    const i32 = async (name: string) => {
      if (!st.tensors.has(name)) throw new LowbitError("E_MISSING_TENSOR", `${dir}: missing tensor ${name}; the checkpoint is incomplete.`);
      const b = await st.read(name);
      return new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4);
    };
    for (const [hfName, info] of st.tensors) {
      if (/\.(qweight|qzeros|scales|g_idx)$/.test(hfName)) continue;
      const mapped = internalNameFromHf(hfName);
      if (!mapped) continue;
      floats.set(mapped, { shape: info.shape, data: await st.readF32(hfName) });
    }
    for (const name of linearWeightNames(config)) {
      const mod = hfModule(name);
      const qweight = await i32(`${mod}.qweight`);
      const qzeros = await i32(`${mod}.qzeros`);
      const scales = await st.readF32(`${mod}.scales`);
      const sInfo = st.tensors.get(`${mod}.scales`)!;
      const outF = sInfo.shape[1]!;
      if (kind === "gptq") {
        const inF = (st.tensors.get(`${mod}.qweight`)!.shape[0]! * 32) / bits;
        const gIdx = st.tensors.has(`${mod}.g_idx`) ? (await i32(`${mod}.g_idx`)).slice() : undefined;
        quantized.set(name, unpackGptq({ qweight, qzeros, scales, gIdx }, { bits, inFeatures: inF, outFeatures: outF, version, sym, name }));
      } else {
        const inF = st.tensors.get(`${mod}.qweight`)!.shape[0]!;
        quantized.set(name, unpackAwq({ qweight, qzeros, scales }, { inFeatures: inF, outFeatures: outF, bits, sym, name }));
      }
    }
    const lowbit = json.lowbit as { quantization?: QuantizedModel["quantization"]; padding?: QuantizedModel["padding"] } | undefined;
    const tokenizer = await findHfTokenizerFiles(dir);
    return {
      config,
      floats,
      quantized,
      quantization: lowbit?.quantization ?? { method: kind, bits, groupSize, sym, actOrder: qc.desc_act === true },
      padding: lowbit?.padding,
      tokenizer,
    };
  } finally {
    await st.close();
  }
}

async function findHfTokenizerFiles(dir: string): Promise<QuantizedModel["tokenizer"]> {
  const { readdir } = await import("node:fs/promises");
  const names = await readdir(dir);
  if (names.includes("tokenizer.bin")) return { kind: "llama2c", path: join(dir, "tokenizer.bin") };
  const files = names.filter((n) => ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model", "generation_config.json"].includes(n));
  return files.includes("tokenizer.json") ? { kind: "hf", dir, files } : undefined;
}
