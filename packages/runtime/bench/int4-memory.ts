/**
 * Child process of bench.ts: loads a Q4_0 GGUF and reports resident memory against the file size,
 * plus its speed. Run alone: node --conditions=@lowbit/source --import tsx bench/int4-memory.ts <file.gguf>
 */
import { stat } from "node:fs/promises";
import { getEngine } from "@lowbit/tensor";
import { loadGguf } from "../src/index";
import { measureSpeed } from "./speed";

const file = process.argv[2]!;
const prefill = Number(process.argv[3] ?? 128);
const decode = Number(process.argv[4] ?? 32);
globalThis.gc?.();
const before = process.memoryUsage();
const model = await loadGguf(file);
globalThis.gc?.();
const after = process.memoryUsage();
const speed = measureSpeed(model, prefill, decode, 1);
console.log(
  JSON.stringify({
    fileBytes: (await stat(file)).size,
    storageBytes: model.storageBytes,
    rssBefore: before.rss,
    rssAfter: after.rss,
    heapUsedDelta: after.heapUsed - before.heapUsed,
    arrayBuffersDelta: after.arrayBuffers - before.arrayBuffers,
    kernelAllocatedBytes: getEngine().stats.allocatedBytes,
    kernelMemoryBytes: getEngine().stats.memoryBytes,
    backends: model.backends()[0],
    embedding: model.weights.embeddingTable?.kind ?? "f32",
    ...speed,
  }),
);
