import { join } from "node:path";
import { bitsPerWeight } from "@lowbit/calibration";
import { buildModel, documentHalf, encodeDocuments, evaluate, generate, type LlamaModel, parameterCount, splitDocuments } from "@lowbit/runtime";
import { LowbitError } from "@lowbit/tensor";
import { choiceFlag, intFlag } from "../args";
import { commonArgs, lowbitCommand, threadArgs } from "../command";
import { findDemoSource } from "../demo-assets";
import { readText } from "../eval-text";
import { openModel, openTokenizer } from "../model/open";
import { resolveModel } from "../model/resolve";
import { writeTextAtomically } from "../output/atomic";
import { quantizedMatrixOf, useInt4Backends } from "../quant/collect";
import { type Prepared, type QuantizeSettings, runQuantization } from "../quant/pipeline";
import { METHODS, type Method } from "../quant/plugins";
import { histograms, layerErrors } from "../quant/summary";
import { renderReport } from "../report/html";
import type { EvalSummary, MethodRun, RunRecord } from "../run-record";
import { threadsInEffect } from "../threads";
import { formatBytes, formatDuration, formatNumber, formatPercent } from "../ui/format";
import { io } from "../ui/io";
import { renderTable } from "../ui/table";
import { VERSION } from "../version";

/** "+0.250", "-0.010", "0.000" */
function signed(x: number): string {
  const t = x.toFixed(3);
  return Number(t) === 0 ? "0.000" : x > 0 ? `+${t}` : t;
}

/** Decode speed: greedy tokens per second from BOS (the KV-cache path users see in generate). */
function decodeSpeed(model: LlamaModel, tokens = 128): number {
  generate(model, [model.config.bosTokenId], { maxTokens: 16, temperature: 0, stopTokens: [] });
  const r = generate(model, [model.config.bosTokenId], { maxTokens: tokens, temperature: 0, stopTokens: [] });
  return r.tokens.length / Math.max(1e-9, r.decodeMs / 1000);
}

function linearBits(model: LlamaModel): number {
  let params = 0;
  let bits = 0;
  for (let i = 0; i < model.config.nLayers; i++) {
    for (const n of ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"] as const) {
      const lin = model.getLinear(i, n);
      const qm = quantizedMatrixOf(lin) ?? (lin as { bits?: number; groupSize?: number });
      const p = lin.inFeatures * lin.outFeatures;
      params += p;
      bits += p * ("bits" in qm && qm.bits && qm.groupSize ? bitsPerWeight(qm.bits, qm.groupSize) : 32);
    }
  }
  return bits / params;
}

export default lowbitCommand(
  {
    args: {
      model: { type: "string", description: "Run on this model instead of the demo model (needs --calib and --eval)", valueHint: "MODEL" },
      tokenizer: { type: "string", description: "Tokenizer for --model", valueHint: "FILE" },
      calib: { type: "string", description: "Calibration text for --model", valueHint: "FILE" },
      eval: { type: "string", description: "Held-out evaluation text for --model", valueHint: "FILE" },
      methods: { type: "string", description: "Methods to compare", default: "rtn,gptq,awq", valueHint: "LIST" },
      bits: { type: "string", description: "Bit widths to compare", default: "8,4", valueHint: "LIST" },
      groupSize: { type: "string", description: "Group size", default: "32", valueHint: "N" },
      samples: { type: "string", description: "Calibration windows (fewer is faster)", default: "16", valueHint: "N" },
      seqLen: { type: "string", description: "Window length for calibration and evaluation", default: "128", valueHint: "L" },
      evalTokens: { type: "string", description: "Held-out tokens to evaluate on (fewer is faster)", default: "4096", valueHint: "N" },
      seed: { type: "string", description: "Seed of the calibration sampling", default: "0", valueHint: "S" },
      out: { type: "string", description: "Folder for run.json and report.html", default: "lowbit-demo", valueHint: "DIR" },
      ...threadArgs,
      ...commonArgs,
    },
    async run({ args, rawArgs }) {
      const cmd = "demo";
      const o = io();
      const methods = (args.methods ?? "").split(",").map((m) => choiceFlag("methods", m.trim(), METHODS, undefined, cmd)!) as Method[];
      const bitsList = (args.bits ?? "").split(",").map((b) => intFlag("bits", b.trim(), undefined, { choices: [8, 4, 3, 2], command: cmd })!);
      const groupSize = intFlag("group-size", args.groupSize, 32, { min: -1, command: cmd });
      const samples = intFlag("samples", args.samples, 16, { min: 1, command: cmd });
      const seqLen = intFlag("seq-len", args.seqLen, 128, { min: 8, command: cmd });
      const evalTokens = intFlag("eval-tokens", args.evalTokens, 4096, { min: seqLen, command: cmd });
      const seed = intFlag("seed", args.seed, 0, { command: cmd });
      const outDir = args.out ?? "lowbit-demo";
      const t0 = performance.now();

      const src = args.model
        ? (() => {
            if (!args.calib || !args.eval) {
              throw new LowbitError("E_INVALID_ARGUMENT", "--model needs --calib FILE (calibration text) and --eval FILE (held-out text, disjoint from it).");
            }
            return { label: args.model, model: args.model, tokenizer: args.tokenizer, calib: args.calib, eval: args.eval, splitHalves: false, note: undefined };
          })()
        : findDemoSource(o.env);
      if (!src) {
        throw new LowbitError(
          "E_FILE_NOT_FOUND",
          "no demo model: this build has no embedded demo model and the real-data folder ($LOWBIT_DATA or ../shared/data beside the checkout) is absent. Set LOWBIT_DATA, or run lowbit demo --model MODEL --calib TEXT --eval TEXT.",
        );
      }
      if (src.note) o.note(o.ce.yellow(src.note));
      let calibDocs: string[];
      let evalDocs: string[];
      if (src.splitHalves) {
        const docs = splitDocuments(await readText(src.calib, "demo text"));
        calibDocs = documentHalf(docs, "first");
        evalDocs = documentHalf(docs, "second");
      } else {
        calibDocs = splitDocuments(await readText(src.calib, "--calib"));
        evalDocs = splitDocuments(await readText(src.eval, "--eval"));
      }
      const resolved = await resolveModel(src.model, { tokenizer: src.tokenizer });
      const opened = await openModel(resolved);
      try {
        const tokenizer = await openTokenizer(opened);
        const fp = await buildModel(opened.config, opened.source, { what: src.model });
        const tokens = encodeDocuments(tokenizer, evalDocs, evalTokens);
        const L = Math.min(seqLen, opened.config.maxSeqLen);
        if (tokens.length < L) throw new LowbitError("E_INVALID_ARGUMENT", `the evaluation text gives ${tokens.length} tokens, less than one window of ${L}; give more text.`);
        const params = parameterCount(opened.config);
        const tb = performance.now();
        const base = evaluate(fp, tokens, { windowLength: L });
        const baseSeconds = (performance.now() - tb) / 1000;
        const baseEval: EvalSummary = { perplexity: base.perplexity, tokens: base.scored, tokensPerSecond: decodeSpeed(fp) };
        o.note(o.ce.dim(`float baseline: perplexity ${formatNumber(base.perplexity, 5)} on ${base.scored} held-out predictions (${formatDuration(baseSeconds)})`));
        const runs: MethodRun[] = [];
        const variants = methods.flatMap((method) => bitsList.map((bits) => ({ method, bits })));
        for (const [vi, { method, bits }] of variants.entries()) {
          const tv = performance.now();
          const settings: QuantizeSettings = {
            model: src.model,
            method,
            bits,
            groupSize,
            sym: false,
            actOrder: false,
            damp: 0.01,
            clip: method === "awq",
            epochs: 2,
            lr: 1e-4,
            seed,
            calib: [],
            calibDocs,
            samples,
            seqLen: L,
            resume: false,
          };
          const prepared: Prepared = { opened, config: opened.config, source: opened.source, tokenizer, notes: [] };
          o.note(o.ce.dim(`[${vi + 1}/${variants.length}] ${method} ${bits}-bit`));
          const run = await runQuantization(settings, prepared, o);
          await useInt4Backends(run.model);
          const te = performance.now();
          const r = evaluate(run.model, tokens, { windowLength: L, reference: fp });
          const evalSeconds = (performance.now() - te) / 1000;
          const speed = decodeSpeed(run.model);
          const seconds = (performance.now() - tv) / 1000;
          runs.push({
            label: `${method} w${bits} g${groupSize}`,
            method,
            bits,
            groupSize,
            sym: false,
            bytes: run.model.storageBytes,
            bitsPerWeight: linearBits(run.model),
            seconds,
            peakRssBytes: run.peakRssBytes,
            layers: layerErrors(run.stats),
            layerOutputErrors: run.stats.map((s) => s?.outputError ?? null),
            eval: { perplexity: r.perplexity, kl: r.kl, top1: r.top1, tokens: r.scored, tokensPerSecond: speed },
            ...histograms(run.sample),
          });
          o.note(
            o.ce.dim(
              `    perplexity ${formatNumber(r.perplexity, 5)}, KL ${formatNumber(r.kl, 3)}, top-1 ${formatPercent(r.top1, 1)} (quantize ${formatDuration(run.quantSeconds + run.calibSeconds)}, eval ${formatDuration(evalSeconds)})`,
            ),
          );
          run.model.dispose();
        }
        const record: RunRecord = {
          kind: "demo",
          version: 1,
          lowbit: VERSION,
          createdAt: new Date().toISOString(),
          command: `lowbit ${["demo", ...rawArgs].join(" ")}`,
          threads: threadsInEffect(),
          model: { path: src.model, format: resolved.kind, parameters: params, bytes: fp.storageBytes, note: src.note },
          baseline: { label: "float32", bytes: fp.storageBytes, bitsPerWeight: 32, eval: baseEval },
          runs,
          calibData: { path: src.splitHalves ? `${src.calib} (first half of its documents)` : src.calib, samples, seqLen: L },
          evalData: { path: src.splitHalves ? `${src.eval} (second half of its documents)` : src.eval, tokens: base.scored },
        };
        const recordPath = join(outDir, "run.json");
        const reportPath = join(outDir, "report.html");
        await writeTextAtomically(recordPath, `${JSON.stringify(record, null, 1)}\n`);
        await writeTextAtomically(reportPath, renderReport(record));
        const total = (performance.now() - t0) / 1000;
        o.result({ ok: true, ...record, report: reportPath, seconds: total });
        const c = o.c;
        o.print(c.bold(`lowbit demo on ${src.label}: ${params.toLocaleString("en-US")} parameters, held-out ${base.scored} predictions, windows of ${L}`));
        o.print(
          c.dim(
            `float perplexity ${formatNumber(base.perplexity, 5)} against the uniform baseline ${opened.config.vocabSize} (a vocabulary of ${opened.config.vocabSize} tokens)`,
          ),
        );
        const rows = [
          ["float32", "-", formatBytes(fp.storageBytes), "32", formatNumber(base.perplexity, 5), "-", "-", "-", formatNumber(baseEval.tokensPerSecond, 3), "-"],
          ...runs.map((m) => [
            m.method,
            String(m.bits),
            formatBytes(m.bytes),
            formatNumber(m.bitsPerWeight, 3),
            formatNumber(m.eval!.perplexity, 5),
            signed(m.eval!.perplexity - base.perplexity),
            formatNumber(m.eval!.kl, 3),
            formatPercent(m.eval!.top1, 1),
            formatNumber(m.eval!.tokensPerSecond, 3),
            formatDuration(m.seconds),
          ]),
        ];
        o.print(
          renderTable(
            [
              { header: "method" },
              { header: "bits", align: "right" },
              { header: "size", align: "right" },
              { header: "bits/w", align: "right" },
              { header: "perplexity", align: "right" },
              { header: "Δ ppl", align: "right" },
              { header: "KL", align: "right" },
              { header: "top-1", align: "right" },
              { header: "tok/s", align: "right" },
              { header: "time", align: "right" },
            ],
            rows,
            { bold: c.bold, dim: c.dim },
          ),
        );
        o.print(
          c.dim(
            `size: weight storage of the running model (linears as @lowbit/int4 Int4Linear: packed codes, scales, zeros; embedding and norms f32); bits/w: linear layers incl. scales and zeros; KL: mean KL(float || quantized) nats per token; tok/s: greedy decoding, 1 thread; group size ${groupSize}, ${samples} calibration windows.`,
          ),
        );
        o.print(`report: ${reportPath}  (run record ${recordPath}; total ${formatDuration(total)})`);
        fp.dispose();
      } finally {
        await opened.close();
      }
    },
  },
  {
    examples: ["lowbit demo", "lowbit demo --samples 8 --eval-tokens 2048", "lowbit demo --methods gptq,awq --bits 4 --out demo-q4"],
  },
);
