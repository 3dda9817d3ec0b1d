import { describe, expect, it } from "vitest";
import { wasmBase64 } from "../wasm/f32.generated";
import { Allocator } from "./allocator";
import { KernelEngine, hasWasmSimd } from "./engine";

describe("allocator", () => {
  it("aligns, reuses freed blocks and coalesces", () => {
    let end = 0;
    const a = new Allocator(1000, (e) => {
      end = Math.max(end, e);
    });
    const p1 = a.alloc(100, 64);
    const p2 = a.alloc(100, 64);
    expect(p1 % 64).toBe(0);
    expect(p2).toBeGreaterThanOrEqual(p1 + 100);
    a.release(p1);
    const p3 = a.alloc(50, 64);
    expect(p3).toBe(p1);
    a.release(p3);
    a.release(p2);
    expect(a.allocatedBytes).toBe(0);
    expect(a.highWater).toBe(0);
    expect(() => a.release(p2)).toThrow(/not allocated/);
  });
});

describe("kernel engine", () => {
  it("runs a SIMD module over the shared memory", () => {
    expect(hasWasmSimd()).toBe(true);
    const engine = new KernelEngine();
    const k = engine.exports<{ dot_f32(a: number, b: number, n: number): number }>({ name: "tensor/f32", base64: wasmBase64 });
    const n = 13;
    const a = engine.buffer(n * 4);
    const b = engine.buffer(n * 4);
    let want = 0;
    for (let i = 0; i < n; i++) {
      a.f32()[i] = i + 1;
      b.f32()[i] = 0.5 * i;
      want += (i + 1) * 0.5 * i;
    }
    expect(k.dot_f32(a.ptr, b.ptr, n)).toBeCloseTo(want, 4);
    // growth keeps earlier data
    const big = engine.buffer(8 * 1024 * 1024);
    expect(a.f32()[3]).toBe(4);
    big.dispose();
    a.dispose();
    b.dispose();
    expect(engine.stats.allocatedBytes).toBe(0);
  });
});
