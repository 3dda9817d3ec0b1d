import { readdir, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { bitsPerWeight } from "@lowbit/calibration";
import { evaluate, parameterCount } from "@lowbit/runtime";
import { LowbitError } from "@lowbit/tensor";
import { choiceFlag, floatFlag, intFlag, multiFlag, requiredString } from "../args";
import { commonArgs, lowbitCommand, threadArgs } from "../command";
import { readText, tokenizeText } from "../eval-text";
import { GGUF_TYPES } from "../export/gguf-format";
import { writeModel } from "../export/write-output";
import { loadModel } from "../model/load";
import { writeTextAtomically } from "../output/atomic";
import { prepare, type QuantizeSettings, runQuantization, toQuantizedModel } from "../quant/pipeline";
import { METHODS } from "../quant/plugins";
import { histograms, layerErrors, printLayerTable, printSummary } from "../quant/summary";
import type { EvalSummary, RunRecord } from "../run-record";
import { threadsInEffect } from "../threads";
import { formatBytes, formatDuration, formatNumber, formatPercent } from "../ui/format";
import { io } from "../ui/io";
import { VERSION } from "../version";

export const QUANT_FORMATS = ["lowbit", "gguf", "gptq", "awq"] as const;

export async function sizeOnDisk(path: string): Promise<number> {
  const st = await stat(path);
  if (!st.isDirectory()) return st.size;
  let total = 0;
  for (const n of await readdir(path)) total += await sizeOnDisk(join(path, n));
  return total;
}

export default lowbitCommand(
  {
    args: {
      model: { type: "positional", required: true, description: "Float model to quantize (HF folder, .gguf F32/F16, llama2.c .bin)" },
      method: { type: "string", description: "rtn, gptq, awq or qat", default: "rtn", valueHint: "METHOD" },
      bits: { type: "string", description: "Bits per weight: 8, 4, 3 or 2", default: "4", valueHint: "N" },
      groupSize: { type: "string", description: "Input columns per scale; -1 for one per output channel", default: "128", valueHint: "N" },
      sym: { type: "boolean", description: "Symmetric codes (zero point at the middle); default asymmetric" },
      actOrder: { type: "boolean", description: "GPTQ: quantize columns by decreasing Hessian diagonal (desc_act)" },
      calib: { type: "string", description: "Calibration text: .txt (documents separated by blank lines) or .jsonl; several allowed", valueHint: "FILE..." },
      samples: { type: "string", description: "Calibration windows", default: "128", valueHint: "N" },
      seqLen: { type: "string", description: "Calibration window length in tokens (default: min(512, context))", valueHint: "L" },
      seed: { type: "string", description: "Seed of the calibration sampling (and QAT)", default: "0", valueHint: "S" },
      mixed: { type: "string", description: 'Bits per layer: comma-separated PATTERN=BITS, e.g. "ffn_down=8,blk.0.*=8"', valueHint: "RULES" },
      budgetBpw: { type: "string", description: "Choose bits per layer by measured sensitivity to fit this average bits per weight", valueHint: "X" },
      format: { type: "string", description: "Output: lowbit, gguf, gptq or awq", default: "lowbit", valueHint: "FORMAT" },
      out: { type: "string", description: "Output path (a folder; a file for gguf)", valueHint: "PATH" },
      resume: { type: "boolean", description: "Continue an interrupted run of the same command from its last finished layer" },
      ggufType: { type: "string", description: `GGUF type of the linears: ${GGUF_TYPES.join(", ")} (default: Q8_0 at 8 bits, Q4_0 with --sym, else Q4_1)`, valueHint: "TYPE" },
      checkpointFormat: { type: "string", description: "GPTQ checkpoint_format: auto, gptq (v1) or gptq_v2", default: "auto", valueHint: "FMT" },
      damp: { type: "string", description: "GPTQ dampening, a fraction of the mean Hessian diagonal", default: "0.01", valueHint: "X" },
      clip: { type: "boolean", description: "RTN: MSE clipping search; AWQ: clip search (default on for AWQ)" },
      steps: { type: "string", description: "QAT: passes (epochs) over the calibration windows per layer", default: "4", valueHint: "N" },
      lr: { type: "string", description: "QAT: peak learning rate", default: "1e-4", valueHint: "X" },
      eval: { type: "string", description: "Also evaluate the written model against the original on this held-out text", valueHint: "FILE" },
      evalTokens: { type: "string", description: "Tokens of --eval text to use", default: "8192", valueHint: "N" },
      tokenizer: { type: "string", description: "Tokenizer file when not beside the model", valueHint: "FILE" },
      ...threadArgs,
      ...commonArgs,
    },
    async run({ args, rawArgs }) {
      const cmd = "quantize";
      const out = requiredString("out", args.out, "where to write the quantized model", cmd);
      const method = choiceFlag("method", args.method, METHODS, "rtn", cmd);
      const bits = intFlag("bits", args.bits, 4, { choices: [8, 4, 3, 2], command: cmd });
      const groupSize = intFlag("group-size", args.groupSize, 128, { min: -1, command: cmd });
      if (groupSize === 0) throw new LowbitError("E_INVALID_ARGUMENT", "--group-size must be a positive number of columns, or -1 for per-channel scales; got 0.");
      const format = choiceFlag("format", args.format, QUANT_FORMATS, "lowbit", cmd);
      const ggufType = choiceFlag("gguf-type", args.ggufType, GGUF_TYPES, undefined, cmd);
      const checkpointFormat = choiceFlag("checkpoint-format", args.checkpointFormat, ["auto", "gptq", "gptq_v2"] as const, "auto", cmd);
      let sym = args.sym === true;
      const o = io();
      if (ggufType && format !== "gguf") throw new LowbitError("E_INVALID_ARGUMENT", `--gguf-type applies to --format gguf only (got --format ${format}).`);
      if (format === "awq" && bits !== 4) throw new LowbitError("E_UNSUPPORTED", `--format awq stores 4-bit weights only (AutoAWQ GEMM); got --bits ${bits}. Use --format gptq or lowbit.`);
      if (format === "awq" && args.actOrder) throw new LowbitError("E_UNSUPPORTED", "--format awq has no g_idx, so --act-order cannot be stored; use --format gptq.");
      if (args.actOrder && method !== "gptq") throw new LowbitError("E_INVALID_ARGUMENT", `--act-order is a GPTQ option; drop it or use --method gptq (got --method ${method}).`);
      if (format === "gguf" && !ggufType && bits !== 8 && bits !== 4) {
        throw new LowbitError("E_UNSUPPORTED", `--format gguf writes 8 bits (Q8_0) or 4 bits (Q4_0/Q4_1); for --bits ${bits} pass --gguf-type to requantize, or use --format lowbit or gptq.`);
      }
      if (format === "gguf" && bits === 8 && !sym) {
        sym = true;
        o.note(`${o.ce.yellow("note:")} GGUF Q8_0 is symmetric, so 8-bit weights are quantized with --sym`);
      }
      if (resolve(out) === resolve(args.model)) throw new LowbitError("E_INVALID_ARGUMENT", `--out ${out} is the input model itself; choose another output path.`);
      const settings: QuantizeSettings = {
        model: args.model,
        tokenizer: args.tokenizer,
        method,
        bits,
        groupSize,
        sym,
        actOrder: args.actOrder === true,
        damp: floatFlag("damp", args.damp, 0.01, { positive: true, max: 1, command: cmd }),
        clip: args.clip ?? method === "awq",
        epochs: intFlag("steps", args.steps, 4, { min: 1, command: cmd }),
        lr: floatFlag("lr", args.lr, 1e-4, { positive: true, command: cmd }),
        seed: intFlag("seed", args.seed, 0, { command: cmd }),
        calib: multiFlag(rawArgs, "calib"),
        samples: intFlag("samples", args.samples, 128, { min: 1, command: cmd }),
        seqLen: intFlag("seq-len", args.seqLen, undefined, { min: 2, command: cmd }),
        mixed: args.mixed,
        budgetBpw: floatFlag("budget-bpw", args.budgetBpw, undefined, { positive: true, max: 16, command: cmd }),
        format,
        out,
        resume: args.resume === true,
      };
      const evalTokens = intFlag("eval-tokens", args.evalTokens, 8192, { min: 2, command: cmd });
      if (args.eval) await readText(args.eval, "--eval");
      const t0 = performance.now();
      const prepared = await prepare(settings);
      try {
        const run = await runQuantization(settings, prepared, o);
        const q = toQuantizedModel(run, settings, prepared);
        const te = performance.now();
        const written = await writeModel(format, out, { config: q.config, q }, { ggufType, checkpointFormat });
        await run.store?.remove();
        const exportSeconds = (performance.now() - te) / 1000;
        const seconds = (performance.now() - t0) / 1000;
        const bytesBefore = await sizeOnDisk(prepared.opened.resolved.path);
        const bytesAfter = await sizeOnDisk(out);
        const params = parameterCount(prepared.opened.config);
        let linearParams = 0;
        let linearBits = 0;
        for (const qm of q.quantized.values()) {
          linearParams += qm.rows * qm.cols;
          linearBits += qm.rows * qm.cols * bitsPerWeight(qm.bits, qm.groupSize);
        }
        const notes = [...run.notes, ...written.notes];
        let evalSummary: EvalSummary | undefined;
        if (args.eval) evalSummary = await evaluateAgainst(out, args.model, args.eval, evalTokens, run.calib?.seqLen ?? Math.min(256, prepared.config.maxSeqLen), args.tokenizer);
        const label = `${method} w${bits}${groupSize > 0 ? ` g${groupSize}` : " per-channel"}${sym ? " sym" : ""}${settings.actOrder ? " act-order" : ""}`;
        const record: RunRecord = {
          kind: "quantize",
          version: 1,
          lowbit: VERSION,
          createdAt: new Date().toISOString(),
          command: `lowbit ${["quantize", ...rawArgs].join(" ")}`,
          threads: threadsInEffect(),
          model: { path: args.model, format: prepared.opened.resolved.kind, parameters: params, bytes: bytesBefore },
          baseline: { label: "original", bytes: bytesBefore, bitsPerWeight: (bytesBefore * 8) / params },
          runs: [
            {
              label,
              method,
              bits,
              groupSize,
              sym,
              format,
              out,
              bytes: bytesAfter,
              bitsPerWeight: (bytesAfter * 8) / params,
              seconds,
              peakRssBytes: run.peakRssBytes,
              layers: layerErrors(run.stats),
              layerOutputErrors: run.stats.map((s) => s?.outputError ?? null),
              ...(evalSummary ? { eval: evalSummary } : {}),
              ...histograms(run.sample),
            },
          ],
          ...(run.calib ? { calibData: { path: settings.calib.join(", ") || "(built-in text)", samples: run.calib.windows, seqLen: run.calib.seqLen } } : {}),
          ...(args.eval ? { evalData: { path: args.eval, tokens: evalSummary?.tokens ?? 0 } } : {}),
        };
        const recordPath = `${out.replace(/\/+$/, "")}.run.json`;
        await writeTextAtomically(recordPath, `${JSON.stringify(record, null, 1)}\n`);
        for (const n of notes) o.note(`${o.ce.yellow("note:")} ${n}`);
        o.result({ ok: true, output: out, format, record: recordPath, notes, checkpointFormat: written.checkpointFormat, ...record.runs[0], exportSeconds, calibSeconds: run.calibSeconds, quantSeconds: run.quantSeconds, resumedAt: run.resumedAt, layerStats: run.stats });
        printSummary(o, `${label} -> ${out} (${format}${written.checkpointFormat ? `, checkpoint_format ${written.checkpointFormat}` : ""})`, { bytesBefore, bytesAfter, params, linearParams, linearBits }, [
          ["time", `${formatDuration(seconds)} (calibration ${formatDuration(run.calibSeconds)}, layers ${formatDuration(run.quantSeconds)}, export ${formatDuration(exportSeconds)})${run.resumedAt ? `, resumed at layer ${run.resumedAt}` : ""}`],
          ["peak memory", `${formatBytes(run.peakRssBytes)} RSS`],
          ...(run.calib ? ([["calibration", `${run.calib.windows} windows of ${run.calib.seqLen} tokens (seed ${settings.seed})`]] as Array<[string, string]>) : []),
          ...(evalSummary
            ? ([
                [
                  "eval",
                  `perplexity ${formatNumber(evalSummary.perplexity, 5)}, KL ${formatNumber(evalSummary.kl, 3)} nats, top-1 ${formatPercent(evalSummary.top1, 2)} on ${evalSummary.tokens} tokens of ${args.eval}`,
                ],
              ] as Array<[string, string]>)
            : []),
          ["run record", `${recordPath} (lowbit report ${out})`],
        ]);
        o.print();
        printLayerTable(o, run.stats);
        await prepared.opened.close();
      } catch (e) {
        await prepared.opened.close();
        throw e;
      }
    },
  },
  {
    multi: ["calib"],
    examples: [
      "lowbit quantize stories260K.bin --method gptq --bits 4 --group-size 32 --calib train.txt --out stories-gptq",
      "lowbit quantize ./Llama-3.2-1B --method awq --bits 4 --format awq --calib c4.jsonl --out llama-awq",
      "lowbit quantize stories260K.bin --method rtn --bits 8 --format gguf --out stories-q8_0.gguf",
      'lowbit quantize model --method gptq --bits 4 --mixed "ffn_down=8" --out q4mix',
    ],
  },
);

/** Perplexity of the written model, with KL and top-1 against the original, on held-out text. */
export async function evaluateAgainst(out: string, original: string, data: string, maxTokens: number, seqLen: number, tokenizer?: string): Promise<EvalSummary> {
  const q = await loadModel(out, { tokenizer });
  const fp = await loadModel(original, { tokenizer });
  const tokens = tokenizeText(fp.tokenizer, await readText(data, "--eval"), maxTokens);
  const L = Math.min(seqLen, tokens.length);
  const t0 = performance.now();
  const r = evaluate(q.model, tokens, { windowLength: L, reference: fp.model });
  const s = (performance.now() - t0) / 1000;
  return { perplexity: r.perplexity, kl: r.kl, top1: r.top1, tokens: r.scored, tokensPerSecond: (r.windows * L * 2) / s };
}
