import { generate } from "@lowbit/runtime";
import { floatFlag, intFlag } from "../args";
import { commonArgs, lowbitCommand, threadArgs } from "../command";
import { loadModel } from "../model/load";
import { threadsInEffect } from "../threads";
import { formatNumber } from "../ui/format";
import { io } from "../ui/io";

export default lowbitCommand(
  {
    args: {
      model: { type: "positional", required: true, description: "Model path (HF folder, .gguf, lowbit output, llama2.c .bin)" },
      prompt: { type: "string", description: "Text to continue (empty: start from BOS)", default: "", valueHint: "TEXT" },
      maxTokens: { type: "string", description: "Largest number of new tokens", default: "256", valueHint: "N" },
      temperature: { type: "string", description: "Sampling temperature; 0 is greedy", default: "0.8", valueHint: "T" },
      topK: { type: "string", description: "Keep the K most likely tokens (0: all)", default: "0", valueHint: "K" },
      topP: { type: "string", description: "Nucleus sampling: keep tokens up to probability P", default: "0.9", valueHint: "P" },
      seed: { type: "string", description: "Seed of the sampler", default: "0", valueHint: "S" },
      tokenizer: { type: "string", description: "Tokenizer file (llama2.c .bin) when not beside the model", valueHint: "FILE" },
      ...threadArgs,
      ...commonArgs,
    },
    async run({ args }) {
      const cmd = "generate";
      const maxTokens = intFlag("max-tokens", args.maxTokens, 256, { min: 1, command: cmd });
      const temperature = floatFlag("temperature", args.temperature, 0.8, { min: 0, command: cmd });
      const topK = intFlag("top-k", args.topK, 0, { min: 0, command: cmd });
      const topP = floatFlag("top-p", args.topP, 0.9, { positive: true, max: 1, command: cmd });
      const seed = intFlag("seed", args.seed, 0, { command: cmd });
      const out = io();
      const { model, tokenizer } = await loadModel(args.model, { tokenizer: args.tokenizer });
      const prompt = tokenizer.encode(args.prompt ?? "", { bos: true });
      if (!out.json) out.write(out.c.dim(args.prompt ?? ""));
      const t0 = performance.now();
      let first = true;
      const r = generate(model, prompt, {
        maxTokens,
        temperature,
        topK,
        topP,
        seed,
        tokenizer,
        onToken: (_id, text) => {
          out.write(first && prompt.length === 1 ? text.trimStart() : text);
          first = false;
          return undefined;
        },
      });
      const seconds = (performance.now() - t0) / 1000;
      const tps = r.tokens.length / Math.max(1e-9, r.decodeMs / 1000);
      const { threads } = threadsInEffect();
      out.print();
      out.note(
        out.ce.dim(
          `${r.tokens.length} tokens in ${formatNumber(seconds, 3)} s: ${formatNumber(tps, 3)} tokens/s decoding, prompt ${r.promptTokens} tokens in ${formatNumber(r.prefillMs, 3)} ms, ${threads} thread${threads === 1 ? "" : "s"} (stopped: ${r.stopReason})`,
        ),
      );
      out.result({
        prompt: args.prompt ?? "",
        text: r.text,
        tokens: r.tokens,
        promptTokens: r.promptTokens,
        stopReason: r.stopReason,
        seconds,
        prefillMs: r.prefillMs,
        decodeMs: r.decodeMs,
        tokensPerSecond: tps,
        threads,
      });
    },
  },
  {
    examples: [
      'lowbit generate stories260K.bin --prompt "Once upon a time" --max-tokens 64',
      "lowbit generate out/model-q4 --temperature 0 --json",
    ],
  },
);
