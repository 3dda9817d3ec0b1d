import os from "node:os";
import { kernelThreadsInfo, kernelThreadsReady, setKernelThreads, shutdownKernelThreads } from "@lowbit/tensor";
import { intFlag } from "./args";

/** The commands that run kernels long enough for worker threads to pay (they take --threads). */
export const THREADED_COMMANDS: ReadonlySet<string> = new Set(["quantize", "eval", "generate", "convert", "demo"]);

/** Most threads the default picks: past this, more cores mostly contend for memory bandwidth. */
const DEFAULT_MAX = 8;

/** The value of `--threads N` / `--threads=N` in a command's raw arguments, if given. */
function flagValue(rawArgs: readonly string[]): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < rawArgs.length; i++) {
    const a = rawArgs[i]!;
    if (a === "--") break;
    if (a === "--threads") value = rawArgs[i + 1] ?? "";
    else if (a.startsWith("--threads=")) value = a.slice("--threads=".length);
  }
  return value;
}

/**
 * The kernel thread count for a command: --threads, else $LOWBIT_THREADS, else the machine's
 * cores (os.availableParallelism) up to 8. A bad value is a usage error naming its source.
 */
export function threadCount(command: string, rawArgs: readonly string[], env: Readonly<Record<string, string | undefined>> = process.env): number {
  const flag = flagValue(rawArgs);
  if (flag !== undefined) return intFlag("threads", flag, 1, { min: 1, max: 256, command });
  const fromEnv = env.LOWBIT_THREADS;
  if (fromEnv !== undefined && fromEnv !== "") return intFlag("threads (from LOWBIT_THREADS)", fromEnv, 1, { min: 1, max: 256, command });
  return Math.max(1, Math.min(DEFAULT_MAX, os.availableParallelism()));
}

/**
 * Runs `body` with `threads` kernel threads, then stops the workers (so the CLI can be run again
 * in the same process, as the tests do). Where the host has no shared memory or workers, the
 * body runs on one thread. Returns the body's result.
 */
export async function withKernelThreads<T>(threads: number, body: () => Promise<T>): Promise<T> {
  if (threads <= 1) return body();
  const got = setKernelThreads(threads);
  try {
    if (got > 1) await kernelThreadsReady();
    return await body();
  } finally {
    await shutdownKernelThreads();
  }
}

/**
 * Threads in effect right now, kernel calls split across them so far, and why fewer threads than
 * asked (when the host could not start them), for run records.
 */
export function threadsInEffect(): { threads: number; splitCalls: number; reason?: string } {
  const info = kernelThreadsInfo();
  return { threads: info.ready ? info.threads : 1, splitCalls: info.dispatches, ...(info.reason ? { reason: info.reason } : {}) };
}
