/**
 * Profiling aid for the e2e suite: lowbit's greedy prefill + decode on one GGUF file, repeated, with
 * the phase times printed. Run under `node --cpu-prof` to see where a decoded token's time goes:
 *
 *   node --conditions=@lowbit/source --import tsx --cpu-prof --cpu-prof-dir /tmp/prof \
 *     tools/bench/src/e2e-profile.ts FILE.gguf [--prefill 128] [--decode 64] [--repeats 3] [--threads 1] [--activations quantized|f32]
 *
 * --kernels also times each linear of a decode step alone (M = 1, CPU ms per call) and sums them
 * over the layers and the classifier: the part of a decoded token that is the weight kernels.
 */
import { parseArgs } from "node:util";
import { LINEAR_NAMES, loadGguf } from "@lowbit/runtime";
import { kernelThreadsReady, type Linear, setKernelThreads } from "@lowbit/tensor";
import { lowbitRun } from "./e2e-run";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    prefill: { type: "string", default: "128" },
    decode: { type: "string", default: "64" },
    repeats: { type: "string", default: "3" },
    threads: { type: "string", default: "1" },
    activations: { type: "string", default: "quantized" },
    kernels: { type: "boolean", default: false },
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
if (values.kernels) {
  // one decode step's linears timed alone (M = 1, CPU time): what the weights cost without the rest
  const cpu = () => {
    const c = process.cpuUsage();
    return (c.user + c.system) / 1000;
  };
  const time = (lin: Linear, reps: number) => {
    const x = new Float32Array(lin.inFeatures).fill(0.01);
    const y = new Float32Array(lin.outFeatures);
    lin.forward(x, 1, y);
    const c0 = cpu();
    for (let i = 0; i < reps; i++) lin.forward(x, 1, y);
    return (cpu() - c0) / reps;
  };
  let perToken = 0;
  for (const name of LINEAR_NAMES) {
    const lin = model.getLinear(0, name);
    const ms = time(lin, 200);
    perToken += ms * model.nLayers;
    console.log(`${name} ${lin.kind} ${lin.outFeatures}x${lin.inFeatures}: ${ms.toFixed(4)} ms cpu, ${(lin.storageBytes / ms / 1e6).toFixed(2)} GB/s of its storage`);
  }
  const out = model.weights.output;
  const msOut = time(out, 50);
  perToken += msOut;
  console.log(`output ${out.kind} ${out.outFeatures}x${out.inFeatures}: ${msOut.toFixed(4)} ms cpu, ${(out.storageBytes / msOut / 1e6).toFixed(2)} GB/s of its storage`);
  console.log(`linears of one decoded token: ${perToken.toFixed(2)} ms cpu (${(1000 / perToken).toFixed(2)} tokens per cpu-s if nothing else ran)`);
}
model.dispose();
