import { f16BitsToF32, LowbitError } from "@lowbit/tensor";
import { describe, expect, it } from "vitest";
import { Q6_KLinear } from "./block-linear";
import { q6kToQuantizedMatrix } from "./codec-q6k";
import { relRmse, TestRng } from "./test-rng";
import { packQ6K, randomQ6Blocks } from "./test-q6k";

describe("GGUF Q6_K", () => {
  it.each([
    [1, 256],
    [3, 512],
    [5, 768],
  ])("%ix%i: codes, scales and zeros come back exactly; Q6_KLinear's weight is d * sc * (q - 32) in f32", (rows, cols) => {
    const rng = new TestRng(rows * 7 + cols);
    const blocks = randomQ6Blocks((rows * cols) / 256, rng);
    const bytes = packQ6K(blocks);
    const qm = q6kToQuantizedMatrix(bytes, rows, cols);
    expect(qm.bits).toBe(6);
    expect(qm.groupSize).toBe(16);
    const f = Math.fround;
    const want = new Float32Array(rows * cols);
    blocks.forEach(({ q, sc, d }, i) => {
      for (let v = 0; v < 256; v++) {
        expect(qm.q[i * 256 + v]).toBe(q[v]);
        const s = f(f16BitsToF32(d) * sc[v >> 4]!);
        want[i * 256 + v] = f(s * (q[v]! - 32));
      }
      for (let j = 0; j < 16; j++) expect(qm.scales[i * 16 + j]).toBe(f(f16BitsToF32(d) * sc[j]!));
    });
    expect([...qm.zeros].every((z) => z === 32)).toBe(true);
    const lin = new Q6_KLinear(bytes, rows, cols);
    expect(lin.kind).toBe("q6_k");
    expect([...lin.dequantizedWeight()]).toEqual([...want]);
    lin.dispose();
  });

  it.each([
    [1, 8, 256],
    [4, 37, 512],
  ])("m=%i %ix%i: wasm matches the reference with f32 and int8 activations, both near the f32 product", (m, rows, cols) => {
    const rng = new TestRng(m + rows + cols);
    const bytes = packQ6K(randomQ6Blocks((rows * cols) / 256, rng));
    const x = rng.normals(m * cols);
    for (const int8 of [false, true]) {
      const lin = new Q6_KLinear(bytes, rows, cols, { activations: int8 ? "int8" : "f32" });
      if (int8) expect(lin.kind).toBe("q6_k-a8");
      const a = lin.run(x, m, undefined, int8, "ref");
      const b = lin.run(x, m, undefined, int8, "wasm");
      expect(relRmse(b, a)).toBeLessThan(1e-5);
      // against the dequantized weight times x in f64: int8 activations per 16 values cost < 1%
      const w = lin.dequantizedWeight();
      const exact = new Float32Array(m * rows);
      for (let i = 0; i < m; i++) {
        for (let r = 0; r < rows; r++) {
          let s = 0;
          for (let c = 0; c < cols; c++) s += x[i * cols + c]! * w[r * cols + c]!;
          exact[i * rows + r] = s;
        }
      }
      expect(relRmse(b, exact)).toBeLessThan(int8 ? 0.01 : 1e-5);
      lin.dispose();
    }
  });

  it("names the tensor on a bad shape, a short buffer or a non-finite scale", () => {
    const bytes = packQ6K(randomQ6Blocks(2, new TestRng(1)));
    expect(() => q6kToQuantizedMatrix(bytes, 2, 200, "blk.0.ffn_down.weight")).toThrow(/q6_k blk\.0\.ffn_down\.weight: row length 200 is not a positive multiple of 256/);
    expect(() => q6kToQuantizedMatrix(bytes.subarray(0, 300), 2, 256, "output.weight")).toThrow(/q6_k output\.weight: 300 bytes, expected 420 for 2x256/);
    const bad = bytes.slice();
    bad[208] = 0x00;
    bad[209] = 0x7c; // f16 infinity
    expect(() => q6kToQuantizedMatrix(bad, 2, 256, "w")).toThrow(LowbitError);
    expect(() => q6kToQuantizedMatrix(bad, 2, 256, "w")).toThrow(/q6_k w: block 0 \(row 0\) has a non-finite scale/);
    expect(() => q6kToQuantizedMatrix(bytes, 0, 256, "w")).toThrow(/q6_k w: row count 0 is not a positive integer/);
  });
});
