import { type DType, byteSize, dtypeInfo, numel } from "./dtype";
import { LowbitError, assert } from "./errors";
import { decodeBf16, decodeF16, encodeBf16, encodeF16 } from "./half";

/** The typed array that stores each plain dtype; f16/bf16 are raw bits; packed dtypes are bytes. */
export type TensorData = Float32Array | Float64Array | Uint16Array | Int8Array | Uint8Array | Int16Array | Int32Array;

type Storage = { new (n: number): TensorData; new (b: ArrayBuffer, offset: number, n: number): TensorData };

/** Storage per plain dtype, and the conversions to and from f32 (a table, not a switch). */
const storage: Record<string, { array: Storage; toF32?: (d: TensorData) => Float32Array; fromF32?: (x: Float32Array) => TensorData }> = {
  f32: { array: Float32Array as unknown as Storage },
  f64: { array: Float64Array as unknown as Storage },
  f16: {
    array: Uint16Array as unknown as Storage,
    toF32: (d) => decodeF16(d as Uint16Array),
    fromF32: (x) => encodeF16(x),
  },
  bf16: {
    array: Uint16Array as unknown as Storage,
    toF32: (d) => decodeBf16(d as Uint16Array),
    fromF32: (x) => encodeBf16(x),
  },
  i8: { array: Int8Array as unknown as Storage },
  u8: { array: Uint8Array as unknown as Storage },
  i16: { array: Int16Array as unknown as Storage },
  i32: { array: Int32Array as unknown as Storage },
};

function storageOf(dtype: DType): Storage {
  const info = dtypeInfo(dtype);
  if (info.kind === "packed") return Uint8Array as unknown as Storage;
  const s = storage[dtype];
  if (!s) throw new LowbitError("E_DTYPE", `Tensor: no storage registered for dtype "${dtype}"`);
  return s.array;
}

/** Elements of `data` that `count` values of `dtype` occupy (bytes for packed dtypes). */
function storageLength(dtype: DType, count: number): number {
  return dtypeInfo(dtype).kind === "packed" ? byteSize(dtype, count) : count;
}

function checkShape(shape: readonly number[]): void {
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new LowbitError("E_SHAPE_MISMATCH", `Tensor: shape [${shape.join(", ")}] has a bad dimension ${d}`);
    }
  }
}

/**
 * A dense, contiguous, row-major tensor: a dtype, a shape, and one typed array. 2-D helpers give
 * views (`row`, `rows` share storage) and copies (`transpose`). Packed dtypes (registered by other
 * packages, e.g. GGUF blocks) store bytes; their last dimension must hold whole blocks.
 */
export class Tensor {
  readonly shape: readonly number[];
  readonly data: TensorData;

  /** Wraps `data` (no copy) or allocates zeroed storage when it is omitted. */
  constructor(
    readonly dtype: DType,
    shape: readonly number[],
    data?: TensorData,
  ) {
    checkShape(shape);
    this.shape = Object.freeze([...shape]);
    const want = storageLength(dtype, numel(shape));
    const Arr = storageOf(dtype);
    this.data = data ?? new Arr(want);
    if (!(this.data instanceof Arr)) {
      throw new LowbitError("E_DTYPE", `Tensor: ${dtype} data must be a ${Arr.name}, got ${this.data.constructor.name}`);
    }
    if (this.data.length !== want) {
      throw new LowbitError(
        "E_SHAPE_MISMATCH",
        `Tensor: ${dtype} [${shape.join(", ")}] needs ${want} elements of storage, got ${this.data.length}`,
      );
    }
  }

  static zeros(dtype: DType, shape: readonly number[]): Tensor {
    return new Tensor(dtype, shape);
  }

  /** An f32 tensor over `data` (no copy). */
  static f32(data: Float32Array, shape: readonly number[]): Tensor {
    return new Tensor("f32", shape, data);
  }

  /** Encodes f32 values as `dtype` (f32 copies; f16/bf16 round to nearest even; others need a codec). */
  static fromFloat32(x: Float32Array, shape: readonly number[], dtype: DType = "f32"): Tensor {
    if (dtype === "f32") return new Tensor("f32", shape, x.slice());
    const conv = storage[dtype]?.fromF32;
    if (!conv) throw new LowbitError("E_UNSUPPORTED", `Tensor.fromFloat32: no f32 encoder for dtype "${dtype}"`);
    return new Tensor(dtype, shape, conv(x));
  }

  get rank(): number {
    return this.shape.length;
  }

  /** Number of values. */
  get size(): number {
    return numel(this.shape);
  }

  get byteLength(): number {
    return this.data.byteLength;
  }

  /** The values as f32 (a copy; f16/bf16 decoded, integers converted). */
  toFloat32(): Float32Array {
    const conv = storage[this.dtype]?.toF32;
    if (conv) return conv(this.data);
    if (dtypeInfo(this.dtype).kind === "packed") {
      throw new LowbitError("E_UNSUPPORTED", `Tensor.toFloat32: packed dtype "${this.dtype}" needs its own decoder`);
    }
    return Float32Array.from(this.data as ArrayLike<number>);
  }

  /** Same storage, new shape with the same number of values. */
  reshape(shape: readonly number[]): Tensor {
    checkShape(shape);
    assert(
      numel(shape) === this.size,
      () => `Tensor.reshape: [${this.shape.join(", ")}] (${this.size} values) cannot become [${shape.join(", ")}]`,
      "E_SHAPE_MISMATCH",
    );
    return new Tensor(this.dtype, shape, this.data);
  }

  private dims2(what: string): [number, number] {
    if (this.shape.length !== 2) {
      throw new LowbitError("E_SHAPE_MISMATCH", `Tensor.${what}: needs a 2-D tensor, got shape [${this.shape.join(", ")}]`);
    }
    return [this.shape[0]!, this.shape[1]!];
  }

  /** Row i of a 2-D tensor: shape [cols], sharing storage. */
  row(i: number): Tensor {
    const [r, c] = this.dims2("row");
    assert(Number.isInteger(i) && i >= 0 && i < r, () => `Tensor.row: index ${i} outside [0, ${r})`);
    const per = storageLength(this.dtype, c);
    return new Tensor(this.dtype, [c], this.data.subarray(i * per, (i + 1) * per));
  }

  /** Rows [a, b) of a 2-D tensor: shape [b - a, cols], sharing storage. */
  rows(a: number, b: number): Tensor {
    const [r, c] = this.dims2("rows");
    assert(
      Number.isInteger(a) && Number.isInteger(b) && a >= 0 && a <= b && b <= r,
      () => `Tensor.rows: range [${a}, ${b}) outside [0, ${r}]`,
    );
    const per = storageLength(this.dtype, c);
    return new Tensor(this.dtype, [b - a, c], this.data.subarray(a * per, b * per));
  }

  /** The transpose of a 2-D tensor as a new contiguous tensor [cols, rows] (tiled copy). */
  transpose(): Tensor {
    const [r, c] = this.dims2("transpose");
    if (dtypeInfo(this.dtype).kind === "packed") {
      throw new LowbitError("E_UNSUPPORTED", `Tensor.transpose: packed dtype "${this.dtype}" cannot be transposed`);
    }
    const src = this.data;
    const dst = new (storageOf(this.dtype))(r * c);
    const T = 32;
    for (let i0 = 0; i0 < r; i0 += T) {
      const i1 = Math.min(r, i0 + T);
      for (let j0 = 0; j0 < c; j0 += T) {
        const j1 = Math.min(c, j0 + T);
        for (let i = i0; i < i1; i++) for (let j = j0; j < j1; j++) dst[j * r + i] = src[i * c + j]!;
      }
    }
    return new Tensor(this.dtype, [c, r], dst);
  }

  /** A deep copy. */
  clone(): Tensor {
    return new Tensor(this.dtype, this.shape, this.data.slice());
  }
}
