/**
 * Profiling aid for the e2e suite: lowbit's greedy prefill + decode on one GGUF file, repeated, with
 * the phase times printed. Run under `node --cpu-prof` to see where a decoded token's time goes:
 *
 *   node --conditions=@lowbit/source --import tsx --cpu-prof --cpu-prof-dir /tmp/prof \
 *     tools/bench/src/e2e-profile.ts FILE.gguf [--prefill 128] [--decode 64] [--repeats 3] [--threads 1] [--activations quantized|f32]
 */
import { parseArgs } from "node:util";
import { loadGguf } from "@lowbit/runtime";
import { kernelThreadsReady, setKernelThreads } from "@lowbit/tensor";
import { lowbitRun } from "./e2e-run";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    prefill: { type: "string", default: "128" },
    decode: { type: "string", default: "64" },
    repeats: { type: "string", default: "3" },
    threads: { type: "string", default: "1" },
    activations: { type: "string", default: "quantized" },
  },
});
const file = positionals[0];
if (!file) throw new Error("usage: e2e-profile.ts FILE.gguf [--prefill N] [--decode N] [--repeats N] [--threads N]");
const threads = Number(values.threads);
if (threads > 1) {
  setKernelThreads(threads);
  await kernelThreadsReady();
}
const model = await loadGguf(file, { activations: values.activations === "f32" ? "f32" : "quantized" });
console.log(model.backends()[0]);
const prefill = Number(values.prefill);
const decode = Number(values.decode);
const V = model.config.vocabSize;
const prompt = Array.from({ length: prefill }, (_, i) => (i === 0 ? 1 : (i * 7919) % V));
for (let r = 0; r < Number(values.repeats); r++) {
  const t = lowbitRun(model, prompt, decode);
  console.log(
    `prefill ${((prefill * 1000) / t.prefillMs).toFixed(1)} tok/s (${((prefill * 1000) / t.prefillCpuMs).toFixed(1)} per cpu-s), ` +
      `decode ${((decode * 1000) / t.decodeMs).toFixed(2)} tok/s (${((decode * 1000) / t.decodeCpuMs).toFixed(2)} per cpu-s)`,
  );
}
model.dispose();
