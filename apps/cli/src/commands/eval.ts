import { evaluate } from "@lowbit/runtime";
import { LowbitError } from "@lowbit/tensor";
import { intFlag, requiredString } from "../args";
import { commonArgs, lowbitCommand, threadArgs } from "../command";
import { readText, tokenizeText } from "../eval-text";
import { loadModel } from "../model/load";
import { formatNumber, formatPercent } from "../ui/format";
import { io } from "../ui/io";
import { Progress } from "../ui/progress";
import { renderPairs } from "../ui/table";

export default lowbitCommand(
  {
    args: {
      model: { type: "positional", required: true, description: "Model to evaluate" },
      data: { type: "string", description: "UTF-8 text to evaluate on (documents separated by blank lines)", valueHint: "FILE" },
      baseline: { type: "string", description: "Reference model (e.g. the unquantized one): adds KL divergence and top-1 agreement", valueHint: "MODEL" },
      seqLen: { type: "string", description: "Window length in tokens (default: min(256, context length))", valueHint: "L" },
      maxTokens: { type: "string", description: "Use at most this many tokens of the data", valueHint: "N" },
      tokenizer: { type: "string", description: "Tokenizer file when not beside the model", valueHint: "FILE" },
      ...threadArgs,
      ...commonArgs,
    },
    async run({ args }) {
      const cmd = "eval";
      const data = requiredString("data", args.data, "a text file to evaluate on (e.g. held-out text the model was not calibrated on)", cmd);
      const maxTokens = intFlag("max-tokens", args.maxTokens, undefined, { min: 2, command: cmd });
      const out = io();
      const text = await readText(data, "--data");
      const { model, tokenizer } = await loadModel(args.model, { tokenizer: args.tokenizer });
      const seqLen = intFlag("seq-len", args.seqLen, Math.min(256, model.config.maxSeqLen), { min: 2, max: model.config.maxSeqLen, command: cmd });
      const reference = args.baseline ? (await loadModel(args.baseline, { tokenizer: args.tokenizer })).model : undefined;
      const tokens = tokenizeText(tokenizer, text, maxTokens);
      if (tokens.length < seqLen) {
        throw new LowbitError(
          "E_INVALID_ARGUMENT",
          `--data ${data} gives ${tokens.length} tokens, fewer than one window of --seq-len ${seqLen}; give more text or a smaller --seq-len.`,
        );
      }
      const progress = new Progress(out, "eval", Math.floor(tokens.length / seqLen), "window");
      const t0 = performance.now();
      const r = evaluate(model, tokens, { windowLength: seqLen, reference, onProgress: (p) => progress.update(p.window) });
      progress.finish();
      const seconds = (performance.now() - t0) / 1000;
      const forwardTokens = r.windows * r.windowLength * (reference ? 2 : 1);
      const result = { ...r, seconds, tokensPerSecond: forwardTokens / seconds, data };
      out.result(result);
      const c = out.c;
      const pairs: Array<[string, string]> = [
        ["perplexity", `${formatNumber(r.perplexity, 5)}${r.referencePerplexity !== undefined ? c.dim(`  (baseline ${formatNumber(r.referencePerplexity, 5)})`) : ""}`],
      ];
      if (r.kl !== undefined) pairs.push(["KL", `${formatNumber(r.kl, 4)} nats/token`]);
      if (r.top1 !== undefined) pairs.push(["top-1", formatPercent(r.top1, 2)]);
      pairs.push(["tokens", `${r.scored.toLocaleString("en-US")} predictions in ${r.windows} windows of ${r.windowLength}`]);
      pairs.push(["speed", `${formatNumber(result.tokensPerSecond, 3)} tokens/s (${formatNumber(seconds, 3)} s)`]);
      out.print(renderPairs(pairs, (s) => c.bold(s)));
    },
  },
  {
    examples: [
      "lowbit eval stories260K.bin --data tinystories-valid.txt --seq-len 256",
      "lowbit eval out/q4 --baseline stories260K.bin --data held-out.txt --json",
    ],
  },
);
