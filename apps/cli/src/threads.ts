import os from "node:os";
import { getKernelThreads, kernelThreadsInfo, kernelThreadsReady, setKernelThreads, shutdownKernelThreads } from "@lowbit/tensor";
import { intFlag } from "./args";

/** The commands that run kernels long enough for worker threads to pay (they take --threads). */
export const THREADED_COMMANDS: ReadonlySet<string> = new Set(["quantize", "eval", "generate", "convert", "demo"]);

/** Most threads the default picks: past this, more cores mostly contend for memory bandwidth. */
const DEFAULT_MAX = 8;

/**
 * The kernel thread count for a command: its --threads value (as citty parsed it, so a
 * "--threads" inside another flag's value is not taken for it), else $LOWBIT_THREADS, else the
 * machine's cores (os.availableParallelism) up to 8. A bad value is a usage error naming its source.
 */
export function threadCount(command: string, flag: unknown, env: Readonly<Record<string, string | undefined>> = process.env): number {
  if (flag !== undefined) return intFlag("threads", flag, 1, { min: 1, max: 256, command });
  const fromEnv = env.LOWBIT_THREADS;
  if (fromEnv !== undefined && fromEnv !== "") return intFlag("threads (from LOWBIT_THREADS)", fromEnv, 1, { min: 1, max: 256, command });
  return Math.max(1, Math.min(DEFAULT_MAX, os.availableParallelism()));
}

/**
 * Runs `body` with exactly `threads` kernel threads, then puts back the thread count the process
 * had (the CLI is run in-process by tests and by programs that embed it). Where the host has no
 * shared memory or workers, or the workers fail to start, the body runs on one thread (`warn`
 * says why; results are the same). Returns the body's result.
 */
export async function withKernelThreads<T>(threads: number, body: () => Promise<T>, warn: (message: string) => void = () => {}): Promise<T> {
  const before = getKernelThreads();
  if (threads === before) return body();
  if (setKernelThreads(threads) > 1) {
    try {
      await kernelThreadsReady();
    } catch (e) {
      warn(`kernel threads did not start (${e instanceof Error ? e.message : String(e)}); running on 1 thread`);
      setKernelThreads(1);
    }
  }
  try {
    return await body();
  } finally {
    if (before > 1) {
      setKernelThreads(before);
      await kernelThreadsReady().catch(() => setKernelThreads(1));
    } else {
      await shutdownKernelThreads();
    }
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
