import { LowbitError } from "../errors";
import { getEngine, type KernelEngine, type KernelModule } from "./engine";
import {
  CTL_ERROR,
  CTL_PENDING,
  CTL_READY,
  CTL_SEQ,
  CTL_STOP,
  MAX_ARGS,
  SLOT_BASE,
  SLOT_F64,
  WORKER_SOURCE,
} from "./worker-source";

/**
 * Kernel threads (opt-in): `setKernelThreads(n)` starts n - 1 workers (Node worker_threads, or Web
 * Workers in a cross-origin-isolated page) over the engine's memory, made shared for this. A
 * dispatch (`runKernelParts`) hands parts 1.. of a kernel call to the workers through a control
 * block (Atomics), runs part 0 on the calling thread and waits for the rest. Workers spin briefly
 * after each dispatch, then sleep in Atomics.wait; they never keep a Node process alive.
 * Without shared memory (no SharedArrayBuffer, or a page that is not cross-origin isolated) the
 * count stays 1 and every kernel runs on the calling thread, as before.
 */

export interface KernelThreadsOptions {
  /** How long an idle worker (and the waiting caller) spins before sleeping, microseconds. Default 200. */
  readonly spinMicros?: number;
}

/** One piece of a kernel call: the export `fn` of `module` called with `args` (numbers). */
export interface KernelPart {
  readonly module: KernelModule;
  readonly fn: string;
  readonly args: readonly number[];
}

interface WorkerHandle {
  terminate(): unknown;
}

type NodeWorkerCtor = new (
  src: string,
  opts: { eval: true; workerData: unknown },
) => WorkerHandle & { unref(): void; on(ev: string, f: (e: unknown) => void): void };

class Pool {
  readonly ctl: Int32Array;
  readonly slots: Float64Array;
  readonly workers: WorkerHandle[] = [];
  private readonly moduleIds = new Map<string, number>();
  private readonly fnNames = new Map<string, string[]>();
  private readonly canBlock: boolean;
  failure: string | undefined;
  /** Kernel calls run on more than one thread. */
  dispatches = 0;

  constructor(
    readonly engine: KernelEngine,
    readonly count: number,
    readonly spinMs: number,
  ) {
    const sab = new SharedArrayBuffer(8 * (SLOT_BASE + count * SLOT_F64));
    this.ctl = new Int32Array(sab);
    this.slots = new Float64Array(sab);
    let canBlock = true;
    try {
      Atomics.wait(this.ctl, 15, 1, 0); // browsers' main threads may not block
    } catch {
      canBlock = false;
    }
    this.canBlock = canBlock;
    const nodeWorker = nodeWorkerCtor();
    const data = (index: number) => ({ memory: engine.memory, ctl: sab, index, spinMs });
    for (let i = 0; i < count; i++) {
      if (nodeWorker) {
        const w = new nodeWorker(WORKER_SOURCE, { eval: true, workerData: data(i) });
        w.unref();
        w.on("error", (e) => {
          this.failure = `kernel worker ${i} failed: ${String(e)}`;
        });
        this.workers.push(w);
      } else {
        const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
        const w = new Worker(url);
        w.onerror = (e) => {
          this.failure = `kernel worker ${i} failed: ${e.message}`;
        };
        w.postMessage(data(i));
        this.workers.push(w);
      }
    }
  }

  get ready(): boolean {
    return this.failure === undefined && Atomics.load(this.ctl, CTL_READY) === this.count;
  }

  /** Runs parts[0] here and parts[1..] on workers 0.. (at most count + 1 parts); waits for all. */
  run(parts: readonly KernelPart[]): void {
    for (let i = 1; i < parts.length; i++) this.load(parts[i]!.module);
    for (let w = 0; w < this.count; w++) {
      const part = parts[w + 1];
      const b = SLOT_BASE + w * SLOT_F64;
      if (!part) {
        this.slots[b] = 0;
        continue;
      }
      const names = this.fnNames.get(part.module.name)!;
      const fi = names.indexOf(part.fn);
      if (fi < 0) throw new LowbitError("E_KERNEL", `kernel module "${part.module.name}" has no export "${part.fn}"`);
      if (part.args.length > MAX_ARGS) {
        throw new LowbitError("E_INVALID_ARGUMENT", `kernel threads pass at most ${MAX_ARGS} arguments, got ${part.args.length}`);
      }
      this.slots[b] = 1;
      this.slots[b + 1] = this.moduleIds.get(part.module.name)!;
      this.slots[b + 2] = fi;
      this.slots[b + 3] = part.args.length;
      for (let i = 0; i < part.args.length; i++) this.slots[b + 4 + i] = part.args[i]!;
    }
    this.dispatches++;
    this.dispatch(() => {
      const first = parts[0];
      if (first) callPart(this.engine, first);
    });
  }

  /** Instantiates `mod` (its shared-memory variant) in every worker, once. */
  load(mod: KernelModule): void {
    if (this.moduleIds.has(mod.name)) return;
    const id = this.moduleIds.size;
    const bytes = this.engine.moduleBytes(mod);
    const ptr = this.engine.alloc(bytes.length, 16);
    try {
      this.engine.u8(ptr, bytes.length).set(bytes);
      for (let w = 0; w < this.count; w++) {
        const b = SLOT_BASE + w * SLOT_F64;
        this.slots[b] = 2;
        this.slots[b + 1] = id;
        this.slots[b + 2] = ptr;
        this.slots[b + 3] = bytes.length;
      }
      this.dispatch(() => {});
    } finally {
      this.engine.free(ptr);
    }
    this.moduleIds.set(mod.name, id);
    this.fnNames.set(mod.name, Object.keys(this.engine.exports(mod)).sort());
  }

  private dispatch(local: () => void): void {
    const ctl = this.ctl;
    Atomics.store(ctl, CTL_ERROR, 0);
    Atomics.store(ctl, CTL_PENDING, this.count);
    Atomics.add(ctl, CTL_SEQ, 1);
    Atomics.notify(ctl, CTL_SEQ);
    try {
      local();
    } finally {
      this.waitIdle();
    }
    if (Atomics.load(ctl, CTL_ERROR) !== 0) {
      throw new LowbitError("E_KERNEL", "a kernel worker failed (trap or missing module) during a threaded kernel call");
    }
  }

  private waitIdle(): void {
    const ctl = this.ctl;
    const t0 = performance.now();
    for (let i = 1; ; i++) {
      const p = Atomics.load(ctl, CTL_PENDING);
      if (p === 0) return;
      if ((i & 255) === 0) {
        if (this.failure !== undefined) {
          throw new LowbitError("E_KERNEL", this.failure);
        }
        if (this.canBlock && performance.now() - t0 > this.spinMs) Atomics.wait(ctl, CTL_PENDING, p, 50);
      }
    }
  }

  stop(): Promise<void> {
    Atomics.store(this.ctl, CTL_STOP, 1);
    Atomics.add(this.ctl, CTL_SEQ, 1);
    Atomics.notify(this.ctl, CTL_SEQ);
    return Promise.all(this.workers.map((w) => w.terminate())).then(() => undefined);
  }
}

function callPart(engine: KernelEngine, part: KernelPart): void {
  const f = engine.exports<Record<string, unknown>>(part.module)[part.fn];
  if (typeof f !== "function") throw new LowbitError("E_KERNEL", `kernel module "${part.module.name}" has no export "${part.fn}"`);
  (f as (...a: number[]) => unknown)(...part.args);
}

function nodeWorkerCtor(): NodeWorkerCtor | undefined {
  const proc = (globalThis as { process?: { versions?: { node?: string }; getBuiltinModule?: (id: string) => unknown } })
    .process;
  if (!proc?.versions?.node || typeof proc.getBuiltinModule !== "function") return undefined;
  const wt = proc.getBuiltinModule("node:worker_threads") as { Worker?: NodeWorkerCtor } | undefined;
  return wt?.Worker;
}

/** Why this host cannot run kernel threads, or undefined when it can. */
export function kernelThreadsUnsupportedReason(): string | undefined {
  const g = globalThis as { SharedArrayBuffer?: unknown; crossOriginIsolated?: boolean; Worker?: unknown };
  if (typeof g.SharedArrayBuffer !== "function" || typeof Atomics === "undefined") {
    return "SharedArrayBuffer is unavailable (in browsers: serve the page cross-origin isolated, COOP + COEP)";
  }
  if (g.crossOriginIsolated === false) return "the page is not cross-origin isolated (COOP + COEP headers)";
  if (!nodeWorkerCtor() && typeof g.Worker !== "function") {
    return "no worker threads (node:worker_threads via process.getBuiltinModule, Node >= 20.16, or Web Workers)";
  }
  return undefined;
}

let pool: Pool | undefined;
let threads = 1;
let lastReason: string | undefined;

/**
 * Sets the number of threads the kernels may use (the calling thread plus n - 1 workers; default
 * 1). Returns the count in effect: 1 when the host has no shared memory or workers (see
 * `kernelThreadsInfo().reason`). Workers start asynchronously; until they are up (await
 * `kernelThreadsReady()`), calls run on the calling thread. The engine's memory becomes shared
 * (a one-time copy) on the first n > 1. Results are bit-identical to one thread.
 */
export function setKernelThreads(n: number, options: KernelThreadsOptions = {}): number {
  if (!Number.isSafeInteger(n) || n < 1 || n > 256) {
    throw new LowbitError("E_INVALID_ARGUMENT", `setKernelThreads: n must be an integer in 1..256, got ${n}`);
  }
  const spinMicros = options.spinMicros ?? 200;
  if (!(spinMicros >= 0)) {
    throw new LowbitError("E_INVALID_ARGUMENT", `setKernelThreads: spinMicros must be >= 0, got ${spinMicros}`);
  }
  if (pool) void pool.stop();
  pool = undefined;
  threads = 1;
  callLimit = 256;
  lastReason = undefined;
  if (n === 1) return 1;
  const reason = kernelThreadsUnsupportedReason();
  if (reason) {
    lastReason = reason;
    return 1;
  }
  const engine = getEngine();
  try {
    engine.useSharedMemory();
    pool = new Pool(engine, n - 1, spinMicros / 1000);
  } catch (e) {
    lastReason = e instanceof Error ? e.message : String(e);
    pool = undefined;
    return 1;
  }
  threads = n;
  return n;
}

/** The thread count set by `setKernelThreads` and in effect (1 = no workers). */
export function getKernelThreads(): number {
  return threads;
}

/** Threads usable right now: the set count (capped by limitKernelThreads) once all workers have started, else 1. @internal */
export function activeKernelThreads(): number {
  return pool?.ready ? Math.min(threads, callLimit) : 1;
}

/** The cap limitKernelThreads sets on each call's threads (256: none). */
let callLimit = 256;

/**
 * Caps the threads each kernel call uses at `n` (1: the calling thread only) while the workers
 * stay up, parked, until the cap is raised again; `undefined` removes the cap. Unlike
 * setKernelThreads, which starts new workers that run V8's baseline code until their kernels are
 * compiled again, raising the cap gets the running workers back at full speed. setKernelThreads
 * and shutdownKernelThreads remove the cap. For comparing thread counts in one process (the benchmarks). @internal
 */
export function limitKernelThreads(n: number | undefined): void {
  if (n !== undefined && (!Number.isSafeInteger(n) || n < 1 || n > 256)) {
    throw new LowbitError("E_INVALID_ARGUMENT", `limitKernelThreads: n must be an integer in 1..256 or undefined, got ${n}`);
  }
  callLimit = n ?? 256;
}

/** Resolves (with the count in effect) when the workers have started; rejects after `timeoutMs`. */
export async function kernelThreadsReady(timeoutMs = 30000): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const p = pool;
    if (!p) return threads;
    if (p.failure !== undefined) throw new LowbitError("E_KERNEL", p.failure);
    if (p.ready) return threads;
    if (Date.now() - t0 > timeoutMs) {
      throw new LowbitError("E_KERNEL", `kernel workers did not start within ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 2));
  }
}

/**
 * The state of kernel threads: count set, workers started, whether the engine's memory is shared,
 * kernel calls split across threads since the count was set, and why threads are off if they are.
 */
export function kernelThreadsInfo(): {
  threads: number;
  ready: boolean;
  shared: boolean;
  dispatches: number;
  reason?: string;
} {
  return {
    threads,
    ready: pool?.ready ?? threads === 1,
    shared: getEngine().shared,
    dispatches: pool?.dispatches ?? 0,
    ...(lastReason ? { reason: lastReason } : {}),
  };
}

/** Stops the workers (the thread count returns to 1). Safe to call at any time, and more than once. */
export async function shutdownKernelThreads(): Promise<void> {
  const p = pool;
  pool = undefined;
  threads = 1;
  callLimit = 256;
  if (p) await p.stop();
}

/**
 * Has the workers instantiate `mod` now, if threads are running and they have not yet (loading
 * allocates kernel memory, so callers that hold views into kernel memory across a threaded call
 * load first). Not a kernel call: no dispatch is counted. @internal
 */
export function preloadKernelModule(mod: KernelModule): void {
  if (pool?.ready) pool.load(mod);
}

/**
 * Runs the parts of one kernel call: part 0 on the calling thread, parts 1.. on the workers
 * (at most `activeKernelThreads()` parts), and returns when all are done. The parts must write
 * disjoint memory and each needs its own scratch. With fewer threads active than parts, the
 * parts run one after another here. This is the hook for other packages' kernels.
 */
export function runKernelParts(parts: readonly KernelPart[]): void {
  const p = pool;
  if (parts.length > 1 && p?.ready && parts.length <= Math.min(p.count + 1, callLimit)) {
    p.run(parts);
    return;
  }
  const engine = getEngine();
  for (const part of parts) callPart(engine, part);
}
