import { getEngine } from "@lowbit/tensor";

interface NodeProcess {
  env?: Record<string, string | undefined>;
  memoryUsage?: () => { rss: number; heapUsed: number; external: number; arrayBuffers: number };
  resourceUsage?: () => { maxRSS: number };
  stderr?: { write(s: string): unknown };
}

function nodeProcess(): NodeProcess | undefined {
  return (globalThis as { process?: NodeProcess }).process;
}

let enabled: boolean | undefined;

/** Whether LOWBIT_MEMTRACE=1 is set (read once; always false outside Node). */
export function memTraceEnabled(): boolean {
  if (enabled === undefined) {
    const p = nodeProcess();
    enabled = p?.env?.LOWBIT_MEMTRACE === "1" && typeof p.memoryUsage === "function";
  }
  return enabled;
}

const mb = (bytes: number): string => (bytes / 1e6).toFixed(1).padStart(7);

/**
 * With LOWBIT_MEMTRACE=1 (Node), prints one line to stderr: the phase, then resident set size,
 * peak resident set size so far, V8 heap used, ArrayBuffer bytes, external bytes and the kernel
 * WebAssembly memory size, in MB. A diagnostic of where quantization's memory goes; a no-op
 * otherwise.
 */
export function memTrace(phase: string): void {
  if (!memTraceEnabled()) return;
  const p = nodeProcess()!;
  const m = p.memoryUsage!();
  const peak = p.resourceUsage ? p.resourceUsage().maxRSS * 1024 : 0;
  const wasm = getEngine().stats.memoryBytes;
  p.stderr?.write(
    `memtrace rss ${mb(m.rss)} peak ${mb(peak)} heap ${mb(m.heapUsed)} arrayBuffers ${mb(m.arrayBuffers)} external ${mb(m.external)} wasm ${mb(wasm)}  ${phase}\n`,
  );
}
