/**
 * The library path of memory.ts (run as its `--child`): quantizes a generated model folder with a
 * lazily opened model, so each decoder layer is read when the calibration driver reaches it, and
 * `finishLayer` keeps the finished layer's QuantizedMatrix values (what an exporter needs) and
 * releases the layer. No output is written. Prints one JSON object on stdout with the timings,
 * the process's peak RSS and the kernel (WebAssembly) memory size; progress goes to stderr.
 *
 * Calibration as the CLI does it: documents of --calib encoded until 4 x samples x seqLen tokens,
 * `sampleWindows` with seed 0 and BOS; RTN needs none. --gptq-layers N quantizes the first N
 * layers with GPTQ and the rest with RTN (to bound the time on large layers).
 */
import path from "node:path";
import { parseArgs } from "node:util";
import { type CalibrationSet, encodeDocuments, type LayerPlugin, quantizeModel, readTextDocuments, rtnPlugin, sampleWindows } from "@lowbit/calibration";
import { gptqPlugin } from "@lowbit/gptq";
import type { QuantizedMatrix } from "@lowbit/int4";
import { LINEAR_NAMES, Llama2cTokenizer, loadHfModel } from "@lowbit/runtime";
import { getEngine } from "@lowbit/tensor";

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
    },
  });
  const dir = values.model!;
  const method = values.method;
  const t0 = performance.now();
  const model = await loadHfModel(dir, { lazy: true });
  const tLoaded = performance.now();
  const rssAfterOpen = process.memoryUsage().rss;
  const common = { bits: 4, groupSize: 128, sym: false };
  const rtn = rtnPlugin(common);
  let plugin: LayerPlugin = rtn;
  let calib = EMPTY;
  if (method === "gptq") {
    calib = await calibration(dir, values.calib!, model.config.vocabSize, Number(values.samples), Number(values["seq-len"]));
    const gptq = gptqPlugin({ ...common, actOrder: false, percdamp: 0.01 });
    const n = values["gptq-layers"] === undefined ? Number.POSITIVE_INFINITY : Number(values["gptq-layers"]);
    plugin = n >= model.nLayers ? gptq : { name: `gptq(first ${n} layers)+rtn`, needsActivations: true, propagate: gptq.propagate, quantizeLayer: (ctx) => (ctx.layer < n ? gptq : rtn).quantizeLayer(ctx) };
  }
  const tCalib = performance.now();
  const kept = new Map<string, QuantizedMatrix>();
  let keptBytes = 0;
  const layerRss: number[] = [];
  const report = await quantizeModel(model, calib, plugin, {
    batchWindows: 16,
    onProgress: (p) => process.stderr.write(`layer ${p.layer + 1}/${p.nLayers} done, RSS ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB, ETA ${(p.etaMs / 1000).toFixed(0)} s\n`),
    finishLayer: (i, m) => {
      for (const name of LINEAR_NAMES) {
        const qm = (m.getLinear(i, name) as { qm?: QuantizedMatrix }).qm;
        if (!qm) throw new Error(`layer ${i} ${name}: the plug-in left no QuantizedMatrix`);
        kept.set(`blk.${i}.${name}.weight`, qm);
        keptBytes += qm.q.byteLength + qm.scales.byteLength + qm.zeros.byteLength;
      }
      m.releaseLayer(i);
      layerRss.push(process.memoryUsage().rss);
    },
  });
  const tEnd = performance.now();
  const kernel = getEngine().stats;
  console.log(
    JSON.stringify({
      ok: true,
      plugin: report.plugin,
      openSeconds: (tLoaded - t0) / 1000,
      calibSeconds: (tCalib - tLoaded) / 1000,
      quantSeconds: (tEnd - tCalib) / 1000,
      layerSeconds: report.layerMs.map((ms) => Number((ms / 1000).toFixed(2))),
      calibTokens: calib.tokensUsed,
      selfReportedPeakRssBytes: maxRss(),
      driverPeakRssBytes: report.peakRssBytes,
      rssAfterOpenBytes: rssAfterOpen,
      rssAfterEachLayerBytes: layerRss,
      keptQuantizedBytes: keptBytes,
      kernelMemoryBytes: kernel.memoryBytes,
      kernelHighWaterBytes: kernel.highWater,
    }),
  );
  await model.close();
}
