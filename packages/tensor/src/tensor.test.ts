import { describe, expect, it } from "vitest";
import { registerDType } from "./dtype";
import { LowbitError } from "./errors";
import { f32ToBf16Bits, f32ToF16Bits } from "./half";
import { Tensor } from "./tensor";

describe("Tensor", () => {
  it.each([
    ["f32", Float32Array, 4],
    ["f64", Float64Array, 8],
    ["f16", Uint16Array, 2],
    ["bf16", Uint16Array, 2],
    ["i8", Int8Array, 1],
    ["u8", Uint8Array, 1],
    ["i16", Int16Array, 2],
    ["i32", Int32Array, 4],
  ] as const)("zeros(%s) uses %o storage", (dtype, Arr, bytes) => {
    const t = Tensor.zeros(dtype, [3, 5]);
    expect(t.data).toBeInstanceOf(Arr);
    expect(t.size).toBe(15);
    expect(t.rank).toBe(2);
    expect(t.byteLength).toBe(15 * bytes);
  });

  it("row/rows are views, transpose is a contiguous copy", () => {
    const x = Float32Array.from({ length: 12 }, (_, i) => i);
    const t = Tensor.f32(x, [3, 4]);
    expect(Array.from(t.row(1).data)).toEqual([4, 5, 6, 7]);
    const r = t.rows(1, 3);
    expect(r.shape).toEqual([2, 4]);
    r.data[0] = 100;
    expect(x[4]).toBe(100); // shares storage
    const tt = t.transpose();
    expect(tt.shape).toEqual([4, 3]);
    expect(Array.from(tt.data)).toEqual([0, 100, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    tt.data[0] = -1;
    expect(x[0]).toBe(0); // a copy
    expect(t.transpose().transpose().data).toEqual(t.data);
    expect(t.rows(3, 3).size).toBe(0);
  });

  it("transposes a large non-square matrix across tile borders", () => {
    const [r, c] = [37, 70];
    const t = Tensor.f32(Float32Array.from({ length: r * c }, (_, i) => i), [r, c]);
    const tt = t.transpose();
    for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) expect(tt.data[j * r + i]).toBe(i * c + j);
  });

  it("encodes and decodes f16/bf16 through the codecs", () => {
    const x = new Float32Array([1, -2.5, 1 / 3, 65504]);
    const h = Tensor.fromFloat32(x, [2, 2], "f16");
    expect(h.data[2]).toBe(f32ToF16Bits(1 / 3));
    expect(Array.from(h.toFloat32())).toEqual([1, -2.5, 0.333251953125, 65504]);
    const b = Tensor.fromFloat32(x, [4], "bf16");
    expect(b.data[2]).toBe(f32ToBf16Bits(1 / 3));
    expect(Tensor.fromFloat32(x, [4]).data).not.toBe(x);
    expect(Array.from(new Tensor("i8", [2], new Int8Array([-3, 7])).toFloat32())).toEqual([-3, 7]);
  });

  it("reshape shares storage and checks the count", () => {
    const t = Tensor.zeros("f32", [2, 6]);
    expect(t.reshape([3, 4]).data).toBe(t.data);
    expect(() => t.reshape([5, 2])).toThrow(/cannot become \[5, 2\]/);
  });

  it("packed dtypes store whole blocks of bytes", () => {
    registerDType({ name: "tensor_test_q8", blockSize: 32, blockBytes: 34, kind: "packed" });
    const t = Tensor.zeros("tensor_test_q8", [4, 64]);
    expect(t.data).toBeInstanceOf(Uint8Array);
    expect(t.byteLength).toBe(4 * 2 * 34);
    expect(t.row(1).byteLength).toBe(68);
    expect(() => Tensor.zeros("tensor_test_q8", [4, 33])).toThrow(LowbitError);
    expect(() => t.transpose()).toThrow(/cannot be transposed/);
    expect(() => t.toFloat32()).toThrow(/own decoder/);
  });

  it.each([
    [() => new Tensor("f32", [2, 3], new Float32Array(5)), /needs 6 elements/],
    [() => new Tensor("f32", [2], new Int8Array(2)), /must be a Float32Array/],
    [() => Tensor.zeros("f32", [2, -1]), /bad dimension/],
    [() => Tensor.zeros("f32", [2, 2, 2]).row(0), /needs a 2-D tensor/],
    [() => Tensor.zeros("f32", [2, 2]).row(2), /outside/],
    [() => Tensor.zeros("f32", [2, 2]).rows(1, 3), /outside/],
    [() => Tensor.zeros("nope", [1]), /unknown dtype/],
  ])("rejects misuse (%#)", (f, msg) => {
    expect(f).toThrow(msg);
  });
});
