import { LowbitError } from "../errors";
import { Allocator } from "./allocator";
import { toSharedMemoryModule } from "./shared-module";

/** A compiled kernel module: a name and its bytes as base64 (see tools/build/wasm.mjs). */
export interface KernelModule {
  readonly name: string;
  readonly base64: string;
}

export type KernelBackend = "wasm" | "ref";

const PAGE = 65536;
/** Maximum pages of the memory (4 GiB); also the maximum declared by shared-memory kernel modules. */
export const MAX_PAGES = 65536;
/** The first 64 KiB stay free for the modules' stacks and (absent) static data. */
const RESERVED = 64 * 1024;

type Exports = Record<string, unknown>;

/**
 * The kernel engine: one WebAssembly memory shared by every kernel module of every lowbit
 * package, an allocator over it, and the compiled modules. Kernels take byte offsets into
 * `memory`; data that is used again (weights) stays resident in a `KernelBuffer`.
 *
 * Threads (opt-in, see threads.ts): `useSharedMemory()` moves the engine onto a shared
 * `WebAssembly.Memory` (same offsets, contents copied once) and from then on instantiates the
 * shared-memory variant of every module, so workers can instantiate the same modules over it.
 */
export class KernelEngine {
  private mem: WebAssembly.Memory;
  private isShared: boolean;
  private readonly allocator: Allocator;
  private readonly compiled = new Map<string, WebAssembly.Module>();
  private readonly compiledShared = new Map<string, WebAssembly.Module>();
  private readonly instances = new Map<string, Exports>();
  private readonly modules = new Map<string, KernelModule>();
  private finalizer = new FinalizationRegistry<number>((ptr) => this.allocator.release(ptr));
  private scratchPtr = -1;
  private scratchBytes = 0;

  constructor(options: { shared?: boolean } = {}) {
    this.mem = new WebAssembly.Memory({ initial: RESERVED / PAGE + 16, maximum: MAX_PAGES, shared: options.shared === true });
    this.isShared = typeof SharedArrayBuffer !== "undefined" && this.mem.buffer instanceof SharedArrayBuffer;
    this.allocator = new Allocator(RESERVED, (minEnd) => {
      const have = this.memory.buffer.byteLength;
      if (minEnd > have) {
        const pages = Math.ceil((minEnd - have) / PAGE);
        // grow at least 25% at a time so repeated small allocations do not regrow each time
        const want = Math.max(pages, Math.ceil(have / PAGE / 4));
        try {
          this.memory.grow(Math.min(want, MAX_PAGES - have / PAGE));
        } catch (e) {
          throw new LowbitError("E_KERNEL", `could not grow kernel memory to ${minEnd} bytes`, { cause: e });
        }
        if (this.memory.buffer.byteLength < minEnd) {
          throw new LowbitError("E_KERNEL", `could not grow kernel memory to ${minEnd} bytes`);
        }
      }
    });
  }

  /** The one memory of every kernel module (a shared memory once `useSharedMemory()` ran). */
  get memory(): WebAssembly.Memory {
    return this.mem;
  }

  /** True when the memory is a shared WebAssembly.Memory (kernel threads possible). */
  get shared(): boolean {
    return this.isShared;
  }

  /**
   * Moves the engine onto a shared memory (needed for kernel threads): a shared memory of the same
   * size receives a copy of the current one, and modules are instantiated again (their shared
   * variant) on next use. Offsets and KernelBuffers stay valid; views made earlier do not see later
   * writes (make views afresh, as after any allocation). No-op when already shared. Throws
   * E_KERNEL when the host has no shared memory (no SharedArrayBuffer, or a browser page that is
   * not cross-origin isolated).
   */
  useSharedMemory(): void {
    if (this.shared) return;
    const pages = this.mem.buffer.byteLength / PAGE;
    let next: WebAssembly.Memory;
    try {
      next = new WebAssembly.Memory({ initial: pages, maximum: MAX_PAGES, shared: true });
      if (typeof SharedArrayBuffer === "undefined" || !(next.buffer instanceof SharedArrayBuffer)) {
        throw new Error("the host returned an unshared memory");
      }
    } catch (e) {
      throw new LowbitError(
        "E_KERNEL",
        "kernel threads need a shared WebAssembly.Memory (SharedArrayBuffer; in browsers a cross-origin-isolated page)",
        { cause: e },
      );
    }
    new Uint8Array(next.buffer).set(new Uint8Array(this.mem.buffer));
    this.mem = next;
    this.isShared = true;
    this.instances.clear();
  }

  /**
   * The compiled module as this engine instantiates it (the shared-memory variant when the memory
   * is shared), compiling synchronously if needed. @internal (threads load it into workers)
   */
  compiledModule(mod: KernelModule): WebAssembly.Module {
    this.register(mod);
    const cache = this.shared ? this.compiledShared : this.compiled;
    let compiled = cache.get(mod.name);
    if (!compiled) {
      try {
        compiled = new WebAssembly.Module(this.moduleBytes(mod));
      } catch (e) {
        throw new LowbitError(
          "E_KERNEL",
          `kernel module "${mod.name}" could not be compiled synchronously (await engine.ready() first in browsers)`,
          { cause: e },
        );
      }
      cache.set(mod.name, compiled);
    }
    return compiled;
  }

  /** The bytes of `mod` matching this engine's memory (shared variant when shared). @internal */
  moduleBytes(mod: KernelModule): Uint8Array<ArrayBuffer> {
    const bytes = decodeBase64(mod.base64);
    return this.shared ? toSharedMemoryModule(bytes, MAX_PAGES) : bytes;
  }

  /** Registers a module; compiled lazily (sync in Node) or by `ready()` (needed in browsers). */
  register(mod: KernelModule): void {
    if (!this.modules.has(mod.name)) this.modules.set(mod.name, mod);
  }

  /** Compiles every registered module asynchronously (browsers forbid large sync compiles). */
  async ready(): Promise<void> {
    for (const mod of this.modules.values()) {
      const cache = this.shared ? this.compiledShared : this.compiled;
      if (cache.has(mod.name)) continue;
      const m = await WebAssembly.compile(this.moduleBytes(mod));
      cache.set(mod.name, m);
    }
  }

  /** The instantiated exports of a module, compiling it synchronously if `ready()` did not. */
  exports<T = Exports>(mod: KernelModule): T {
    let inst = this.instances.get(mod.name);
    if (!inst) {
      const compiled = this.compiledModule(mod);
      inst = new WebAssembly.Instance(compiled, { env: { memory: this.memory } }).exports as Exports;
      this.instances.set(mod.name, inst);
    }
    return inst as T;
  }

  alloc(bytes: number, align = 64): number {
    return this.allocator.alloc(bytes, align);
  }

  free(ptr: number): void {
    this.allocator.release(ptr);
  }

  /**
   * A reusable scratch region of at least `bytes` bytes (64-byte aligned) for one kernel call:
   * inputs are copied in, the kernel runs, results are copied out. The region is valid until the
   * next `scratch()` call (by any kernel), so take it once per operation and never hold it.
   * It only grows (by at least 1.5x); `releaseScratch()` frees it.
   */
  scratch(bytes: number): number {
    if (bytes > this.scratchBytes || this.scratchPtr < 0) {
      const size = Math.max(bytes, 4096, Math.ceil(this.scratchBytes * 1.5));
      this.releaseScratch();
      this.scratchPtr = this.allocator.alloc(size, 64);
      this.scratchBytes = size;
    }
    return this.scratchPtr;
  }

  releaseScratch(): void {
    if (this.scratchPtr >= 0) this.allocator.release(this.scratchPtr);
    this.scratchPtr = -1;
    this.scratchBytes = 0;
  }

  /**
   * The byte offset of `view` when it already lies in kernel memory (a KernelBuffer view), else -1:
   * kernels use such inputs in place instead of copying them.
   */
  offsetOf(view: ArrayBufferView): number {
    return view.buffer === this.memory.buffer ? view.byteOffset : -1;
  }

  /** A buffer in kernel memory, freed by `dispose()` or when garbage collected. */
  buffer(bytes: number, align = 64): KernelBuffer {
    const ptr = this.alloc(bytes, align);
    const buf = new KernelBuffer(this, ptr, bytes);
    this.finalizer.register(buf, ptr, buf);
    return buf;
  }

  /** @internal */
  forget(buf: KernelBuffer): void {
    this.finalizer.unregister(buf);
  }

  get stats(): { allocatedBytes: number; highWater: number; memoryBytes: number } {
    return {
      allocatedBytes: this.allocator.allocatedBytes,
      highWater: this.allocator.highWater,
      memoryBytes: this.memory.buffer.byteLength,
    };
  }

  // Views are made fresh on each call: growing the memory detaches earlier views.
  f32(ptr: number, length: number): Float32Array {
    return new Float32Array(this.memory.buffer, ptr, length);
  }
  i32(ptr: number, length: number): Int32Array {
    return new Int32Array(this.memory.buffer, ptr, length);
  }
  u8(ptr: number, length: number): Uint8Array {
    return new Uint8Array(this.memory.buffer, ptr, length);
  }
  i8(ptr: number, length: number): Int8Array {
    return new Int8Array(this.memory.buffer, ptr, length);
  }
  u16(ptr: number, length: number): Uint16Array {
    return new Uint16Array(this.memory.buffer, ptr, length);
  }
  f64(ptr: number, length: number): Float64Array {
    return new Float64Array(this.memory.buffer, ptr, length);
  }
}

/** Bytes in kernel memory owned by one object (weights, scratch). */
export class KernelBuffer {
  private disposed = false;
  constructor(
    readonly engine: KernelEngine,
    readonly ptr: number,
    readonly bytes: number,
  ) {}
  f32(offsetBytes = 0, length = (this.bytes - offsetBytes) >> 2): Float32Array {
    return this.engine.f32(this.ptr + offsetBytes, length);
  }
  u8(offsetBytes = 0, length = this.bytes - offsetBytes): Uint8Array {
    return this.engine.u8(this.ptr + offsetBytes, length);
  }
  i8(offsetBytes = 0, length = this.bytes - offsetBytes): Int8Array {
    return this.engine.i8(this.ptr + offsetBytes, length);
  }
  i32(offsetBytes = 0, length = (this.bytes - offsetBytes) >> 2): Int32Array {
    return this.engine.i32(this.ptr + offsetBytes, length);
  }
  u16(offsetBytes = 0, length = (this.bytes - offsetBytes) >> 1): Uint16Array {
    return this.engine.u16(this.ptr + offsetBytes, length);
  }
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.engine.forget(this);
    this.engine.free(this.ptr);
  }
}

let defaultEngine: KernelEngine | undefined;
let backend: KernelBackend = "wasm";

/** The process-wide engine, made on first use (no import-time side effects). */
export function getEngine(): KernelEngine {
  defaultEngine ??= new KernelEngine();
  return defaultEngine;
}

/** Chooses the kernel backend for subsequent calls: "wasm" (default) or "ref" (reference twins). */
export function setKernelBackend(b: KernelBackend): void {
  if (b !== "wasm" && b !== "ref") {
    throw new LowbitError("E_INVALID_ARGUMENT", `unknown kernel backend "${String(b)}"; known: wasm, ref`);
  }
  backend = b;
}

export function getKernelBackend(): KernelBackend {
  return backend;
}

/** True when this host runs WebAssembly SIMD (Node 20+, current browsers). */
export function hasWasmSimd(): boolean {
  // (module (func (result v128) v128.const i32x4 0 0 0 0))
  const probe = new Uint8Array([
    0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 22, 1, 20, 0, 253, 12, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11,
  ]);
  try {
    return WebAssembly.validate(probe);
  } catch {
    return false;
  }
}

function decodeBase64(b64: string): Uint8Array<ArrayBuffer> {
  if (typeof Buffer !== "undefined") {
    const b = Buffer.from(b64, "base64");
    const out = new Uint8Array(b.byteLength);
    out.set(b);
    return out;
  }
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
