import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import { LowbitError } from "@lowbit/tensor";
import { choiceFlag, requiredString } from "../args";
import { commonArgs, lowbitCommand, threadArgs } from "../command";
import { GGUF_TYPES } from "../export/gguf-format";
import { sourceFloats, writeModel } from "../export/write-output";
import { openModel } from "../model/open";
import { resolveModel } from "../model/resolve";
import { formatBytes, formatDuration } from "../ui/format";
import { io } from "../ui/io";

const TARGETS = ["gguf", "gptq", "awq", "safetensors", "lowbit"] as const;

async function sizeOf(path: string): Promise<number> {
  const st = await stat(path);
  if (!st.isDirectory()) return st.size;
  const { readdir } = await import("node:fs/promises");
  let total = 0;
  for (const n of await readdir(path)) total += await sizeOf(`${path}/${n}`);
  return total;
}

export default lowbitCommand(
  {
    args: {
      input: { type: "positional", required: true, description: "Model to convert (llama2.c .bin, HF folder, .gguf, lowbit/GPTQ/AWQ output)" },
      to: { type: "string", description: "Target format: gguf, gptq, awq, safetensors (unquantized HF folder) or lowbit", valueHint: "FORMAT" },
      out: { type: "string", description: "Output path (a file for gguf, a folder otherwise)", valueHint: "PATH" },
      ggufType: { type: "string", description: `GGUF tensor type: ${GGUF_TYPES.join(", ")} (default: f32 for float models, the natural type of quantized ones)`, valueHint: "TYPE" },
      checkpointFormat: { type: "string", description: "GPTQ checkpoint_format: gptq (v1), gptq_v2, or auto (v1 unless a zero point of 0 needs v2)", default: "auto", valueHint: "FMT" },
      dtype: { type: "string", description: "Float dtype for --to safetensors: f32 or f16", default: "f32", valueHint: "DTYPE" },
      tokenizer: { type: "string", description: "Tokenizer file when not beside the model", valueHint: "FILE" },
      ...threadArgs,
      ...commonArgs,
    },
    async run({ args }) {
      const cmd = "convert";
      const to = choiceFlag("to", requiredString("to", args.to, `the target format (${TARGETS.join(", ")})`, cmd), TARGETS, undefined, cmd)!;
      const out = requiredString("out", args.out, "the output path", cmd);
      const ggufType = choiceFlag("gguf-type", args.ggufType, GGUF_TYPES, undefined, cmd);
      const checkpointFormat = choiceFlag("checkpoint-format", args.checkpointFormat, ["auto", "gptq", "gptq_v2"] as const, "auto", cmd);
      const dtype = choiceFlag("dtype", args.dtype, ["f32", "f16"] as const, "f32", cmd);
      if (ggufType && to !== "gguf") throw new LowbitError("E_INVALID_ARGUMENT", `--gguf-type applies to --to gguf only (got --to ${to}); drop it.`);
      if (resolve(out) === resolve(args.input)) throw new LowbitError("E_INVALID_ARGUMENT", `--out ${out} is the input itself; choose another output path.`);
      const t0 = performance.now();
      const resolved = await resolveModel(args.input, { tokenizer: args.tokenizer, needTokenizer: "optional" });
      const opened = await openModel(resolved);
      try {
        // float models stay in their files: each tensor is read when the writer reaches it
        const floats = opened.quantized ? undefined : sourceFloats(opened.config, opened.source, args.input);
        const r = await writeModel(to, out, { config: opened.config, q: opened.quantized, floats, tokenizer: opened.tokenizerFiles }, { ggufType, checkpointFormat, dtype });
        const seconds = (performance.now() - t0) / 1000;
        const before = await sizeOf(args.input);
        const after = await sizeOf(out);
        const typeCounts: Record<string, number> = {};
        for (const t of r.ggufTypes?.values() ?? []) typeCounts[t] = (typeCounts[t] ?? 0) + 1;
        const o = io();
        for (const n of r.notes) o.note(`${o.ce.yellow("note:")} ${n}`);
        o.print(
          `wrote ${out} (${to}${r.checkpointFormat ? `, checkpoint_format ${r.checkpointFormat}` : ""}): ${formatBytes(before)} -> ${formatBytes(after)} in ${formatDuration(seconds)}`,
        );
        if (r.ggufTypes) o.print(`tensor types: ${Object.entries(typeCounts).map(([k, v]) => `${k} ×${v}`).join(", ")}`);
        o.result({ ok: true, input: args.input, output: out, format: to, bytesBefore: before, bytesAfter: after, seconds, notes: r.notes, tensorTypes: r.ggufTypes ? Object.fromEntries(r.ggufTypes) : undefined, checkpointFormat: r.checkpointFormat });
      } finally {
        await opened.close();
      }
    },
  },
  {
    examples: [
      "lowbit convert stories260K.bin --to gguf --gguf-type q8_0 --out stories-q8_0.gguf",
      "lowbit convert ./model-gptq --to gguf --out model-q4.gguf",
      "lowbit convert stories260K.bin --to safetensors --out ./stories-hf",
    ],
  },
);
