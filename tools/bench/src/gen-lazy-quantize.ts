/**
 * The library path of memory.ts (run as its `--child`): quantizes a generated model folder with a
 * lazily opened model (`buildModel(cfg, source, { lazy: true })`), so each decoder layer is read
 * when the calibration driver reaches it, and `finishLayer` writes the finished layer's
 * QuantizedMatrix values (what an exporter needs; codes bit-packed) to a temporary spill file and
 * releases the layer. The model is built over a source whose embedding holds only the calibration
 * tokens' rows and whose classifier is a stub (the driver never runs it; an exporter reads both from
 * the model file), as `lowbit quantize` does. With --resident, the earlier behaviour: embedding and
 * classifier loaded, finished matrices kept in memory unpacked. No output is written. Prints one
 * JSON object on stdout with the timings, the process's peak RSS and the kernel (WebAssembly)
 * memory size; progress goes to stderr.
 *
 * Calibration as the CLI does it: documents of --calib encoded until 4 x samples x seqLen tokens,
 * `sampleWindows` with seed 0 and BOS; RTN needs none. --gptq-layers N quantizes the first N
 * layers with GPTQ and the rest with RTN (to bound the time on large layers).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { type CalibrationSet, encodeDocuments, type LayerPlugin, quantizeModel, readTextDocuments, rtnPlugin, sampleWindows } from "@lowbit/calibration";
import { gptqPlugin } from "@lowbit/gptq";
import { openSafetensorsModel } from "@lowbit/formats";
import { packBits, type QuantizedMatrix } from "@lowbit/int4";
import {
  buildModel,
  configFromHf,
  type EmbeddingTable,
  hfNameFromInternal,
  internalNameFromHf,
  LINEAR_NAMES,
  Llama2cTokenizer,
  type LlamaModel,
  type TensorSource,
} from "@lowbit/runtime";
import { getEngine, type Linear } from "@lowbit/tensor";

/** A classifier that is never run while quantizing (the driver runs decoder layers only). */
function stubLinear(outFeatures: number, inFeatures: number): Linear {
  const fail = (): never => {
    throw new Error("the classifier is not loaded while quantizing");
  };
  return { kind: "stub", outFeatures, inFeatures, storageBytes: 0, forward: fail, dequantizedWeight: fail };
}

/** The embedding rows of `tokens` only. */
function rowsTable(all: Float32Array, dim: number, tokens: ArrayLike<number>): EmbeddingTable {
  const index = new Map<number, number>();
  for (let t = 0; t < tokens.length; t++) if (!index.has(tokens[t]!)) index.set(tokens[t]!, index.size);
  const rows = new Float32Array(index.size * dim);
  for (const [id, r] of index) rows.set(all.subarray(id * dim, (id + 1) * dim), r * dim);
  return {
    kind: "calibration rows",
    storageBytes: rows.byteLength,
    row(id, out, offset) {
      const r = index.get(id);
      if (r === undefined) throw new Error(`token ${id} is not a calibration token`);
      out.set(rows.subarray(r * dim, (r + 1) * dim), offset);
    },
  };
}

/** A Hugging Face folder opened lazily; with `deferHeads`, without the classifier and with only `tokens`' embedding rows. */
async function openLazy(dir: string, deferHeads: boolean, tokens: ArrayLike<number>): Promise<LlamaModel> {
  const cfgPath = path.join(dir, "config.json");
  let cfg = configFromHf(fs.readFileSync(cfgPath, "utf8"), cfgPath);
  const st = await openSafetensorsModel(dir);
  const byInternal = new Map<string, string>();
  for (const name of st.tensors.keys()) {
    const internal = internalNameFromHf(name);
    if (internal) byInternal.set(internal, name);
  }
  if (!cfg.tiedEmbeddings && !byInternal.has("output.weight")) cfg = { ...cfg, tiedEmbeddings: true };
  const source: TensorSource = {
    shape: (name) => {
      const hf = byInternal.get(name);
      return hf ? [...st.tensors.get(hf)!.shape] : undefined;
    },
    readF32: (name) => st.readF32(byInternal.get(name) ?? hfNameFromInternal(name) ?? name),
    close: () => st.close(),
  };
  if (deferHeads) {
    source.readLinear = async (name, out, inp) => (name === "output.weight" || (cfg.tiedEmbeddings && name === "token_embd.weight") ? stubLinear(out, inp) : undefined);
    source.readEmbedding = async (name, _vocab, dim) => rowsTable(tokens.length > 0 ? await source.readF32(name) : new Float32Array(0), dim, tokens);
  }
  return buildModel(cfg, source, { lazy: true, what: dir });
}

async function calibration(dir: string, file: string, vocabSize: number, samples: number, seqLen: number): Promise<CalibrationSet> {
  const tok = await Llama2cTokenizer.fromFile(path.join(dir, "tokenizer.bin"), { expectedVocabSize: vocabSize });
  const docs = await readTextDocuments(file);
  const want = 4 * samples * seqLen + seqLen;
  const parts: Int32Array[] = [];
  let have = 0;
  for (let i = 0; i < docs.length && have < want; i += 16) {
    const part = encodeDocuments(docs.slice(i, i + 16), tok);
    parts.push(part);
    have += part.length;
  }
  const tokens = new Int32Array(have);
  let off = 0;
  for (const p of parts) {
    tokens.set(p, off);
    off += p.length;
  }
  return sampleWindows(tokens, { windows: samples, seqLen, seed: 0, bosId: tok.bosId });
}

const EMPTY: CalibrationSet = { tokens: new Int32Array(0), windows: 0, seqLen: 0, offsets: new Int32Array(0), tokensUsed: 0, distinctTokens: 0, streamTokens: 0, seed: 0 };

const maxRss = () => process.resourceUsage().maxRSS * 1024;

export async function runLibraryChild(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      child: { type: "boolean" },
      model: { type: "string" },
      method: { type: "string", default: "rtn" },
      calib: { type: "string" },
      samples: { type: "string", default: "32" },
      "seq-len": { type: "string", default: "512" },
      "gptq-layers": { type: "string" },
      resident: { type: "boolean", default: false },
    },
  });
  const dir = values.model!;
  const method = values.method;
  const resident = values.resident === true;
  const t0 = performance.now();
  const vocabSize = configFromHf(fs.readFileSync(path.join(dir, "config.json"), "utf8"), dir).vocabSize;
  const calib = method === "gptq" ? await calibration(dir, values.calib!, vocabSize, Number(values.samples), Number(values["seq-len"])) : EMPTY;
  const tCalib = performance.now();
  const model = await openLazy(dir, !resident, calib.tokens);
  const tLoaded = performance.now();
  const rssAfterOpen = process.memoryUsage().rss;
  const common = { bits: 4, groupSize: 128, sym: false };
  // RTN needs no activations, so no quantized layer is run: without --resident its linears keep only the matrix (no f32 copy)
  const rtn = rtnPlugin(
    resident || method === "gptq"
      ? common
      : { ...common, makeLinear: (qm) => Object.assign(stubLinear(qm.rows, qm.cols), { kind: "quantized matrix", qm }) },
  );
  let plugin: LayerPlugin = rtn;
  if (method === "gptq") {
    const gptq = gptqPlugin({ ...common, actOrder: false, percdamp: 0.01 });
    const n = values["gptq-layers"] === undefined ? Number.POSITIVE_INFINITY : Number(values["gptq-layers"]);
    plugin = n >= model.nLayers ? gptq : { name: `gptq(first ${n} layers)+rtn`, needsActivations: true, propagate: gptq.propagate, quantizeLayer: (ctx) => (ctx.layer < n ? gptq : rtn).quantizeLayer(ctx) };
  }
  const kept = new Map<string, QuantizedMatrix>();
  let keptBytes = 0;
  // finished matrices: bit-packed codes, scales and zeros appended to a spill file (an exporter reads them back one at a time)
  const spillPath = path.join(os.tmpdir(), `lowbit-spill-${process.pid}.bin`);
  const spill = resident ? undefined : fs.openSync(spillPath, "w");
  let spilledBytes = 0;
  const append = (v: ArrayBufferView) => {
    fs.writeSync(spill!, new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
    spilledBytes += v.byteLength;
  };
  const layerRss: number[] = [];
  const report = await quantizeModel(model, calib, plugin, {
    batchWindows: 16,
    onProgress: (p) => process.stderr.write(`layer ${p.layer + 1}/${p.nLayers} done, RSS ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB, ETA ${(p.etaMs / 1000).toFixed(0)} s\n`),
    finishLayer: (i, m) => {
      for (const name of LINEAR_NAMES) {
        const qm = (m.getLinear(i, name) as { qm?: QuantizedMatrix }).qm;
        if (!qm) throw new Error(`layer ${i} ${name}: the plug-in left no QuantizedMatrix`);
        if (spill !== undefined) {
          append(packBits(qm.q, qm.bits));
          append(qm.scales);
          append(qm.zeros);
        } else {
          kept.set(`blk.${i}.${name}.weight`, qm);
          keptBytes += qm.q.byteLength + qm.scales.byteLength + qm.zeros.byteLength;
        }
      }
      m.releaseLayer(i);
      layerRss.push(process.memoryUsage().rss);
    },
  });
  const tEnd = performance.now();
  if (spill !== undefined) {
    fs.closeSync(spill);
    fs.rmSync(spillPath, { force: true });
  }
  const kernel = getEngine().stats;
  console.log(
    JSON.stringify({
      ok: true,
      plugin: report.plugin,
      mode: resident ? "resident heads, matrices kept in memory" : "deferred heads, matrices spilled to disk",
      calibSeconds: (tCalib - t0) / 1000,
      openSeconds: (tLoaded - tCalib) / 1000,
      quantSeconds: (tEnd - tLoaded) / 1000,
      layerSeconds: report.layerMs.map((ms) => Number((ms / 1000).toFixed(2))),
      calibTokens: calib.tokensUsed,
      selfReportedPeakRssBytes: maxRss(),
      driverPeakRssBytes: report.peakRssBytes,
      rssAfterOpenBytes: rssAfterOpen,
      rssAfterEachLayerBytes: layerRss,
      keptQuantizedBytes: keptBytes,
      spilledBytes,
      kernelMemoryBytes: kernel.memoryBytes,
      kernelHighWaterBytes: kernel.highWater,
    }),
  );
  await model.close();
}
