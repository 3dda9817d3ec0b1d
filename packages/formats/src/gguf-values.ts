import { LowbitError, type LowbitErrorCode } from "@lowbit/tensor";

/** GGUF metadata value types by their on-disk ids. */
export const GGUF_VALUE_TYPES = [
  "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
] as const;

export type GgufValueType = (typeof GGUF_VALUE_TYPES)[number];
export type GgufNumberType = "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "f32" | "f64";
export type GgufBigIntType = "u64" | "i64";

export type GgufArrayItems = number[] | bigint[] | boolean[] | string[] | GgufArrayValue[];

/** An array value: its element type and elements (nested arrays are GgufArrayValue themselves). */
export interface GgufArrayValue {
  itemType: GgufValueType;
  value: GgufArrayItems;
}

/** A typed metadata value as read (u64/i64 are always bigint). */
export type GgufValue =
  | { type: GgufNumberType; value: number }
  | { type: GgufBigIntType; value: bigint }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | ({ type: "array" } & GgufArrayValue);

/** A metadata entry to write; u64/i64 may also be given as safe integer numbers. */
export type GgufMetadataEntry = { key: string } & (GgufValue | { type: GgufBigIntType; value: number });

export const MAX_ARRAY_DEPTH = 8;

/** Fixed byte sizes of scalar types (string and array vary). */
const SCALAR_BYTES: Partial<Record<GgufValueType, number>> = {
  u8: 1, i8: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, bool: 1, u64: 8, i64: 8, f64: 8,
};

/** Smallest encoding of one value of a type: used to bound counts by the bytes left. */
export function minValueBytes(t: GgufValueType): number {
  return SCALAR_BYTES[t] ?? (t === "string" ? 8 : 12);
}

/** Thrown when the parse needs more of the file than the buffer holds (the caller reads more). */
export class NeedMore {
  constructor(readonly bytes: number) {}
}

const utf8 = new TextDecoder("utf-8");

/**
 * A bounds-checked little-endian reader over a prefix of a file. Reading past the buffer but
 * inside the file throws NeedMore; reading past the file is a LowbitError.
 */
export class ByteCursor {
  pos = 0;
  private readonly dv: DataView;

  constructor(
    readonly buf: Uint8Array,
    readonly fileSize: number,
    readonly source: string,
  ) {
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  remaining(): number {
    return this.fileSize - this.pos;
  }

  fail(code: LowbitErrorCode, msg: string): never {
    throw new LowbitError(code, `${this.source}: ${msg}`);
  }

  need(n: number, what: string, code: LowbitErrorCode): void {
    if (this.pos + n > this.fileSize) {
      this.fail(code, `${what} at byte ${this.pos} needs ${n} bytes but the file has ${this.remaining()} left`);
    }
    if (this.pos + n > this.buf.byteLength) throw new NeedMore(this.pos + n);
  }

  u32(what: string, code: LowbitErrorCode): number {
    this.need(4, what, code);
    const v = this.dv.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  i32(what: string, code: LowbitErrorCode): number {
    this.need(4, what, code);
    const v = this.dv.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }

  u64(what: string, code: LowbitErrorCode): bigint {
    this.need(8, what, code);
    const v = this.dv.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }

  i64(what: string, code: LowbitErrorCode): bigint {
    this.need(8, what, code);
    const v = this.dv.getBigInt64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** A u64 count, checked so that `count * minBytes` fits in the rest of the file. */
  count(what: string, minBytes: number, code: LowbitErrorCode): number {
    const n = this.u64(what, code);
    if (n * BigInt(minBytes) > BigInt(this.remaining())) {
      this.fail(code, `${what} ${n} cannot fit in the ${this.remaining()} bytes left in the file`);
    }
    return Number(n);
  }

  string(what: string, code: LowbitErrorCode): string {
    const len = this.count(`${what} length`, 1, code);
    this.need(len, what, code);
    const s = utf8.decode(this.buf.subarray(this.pos, this.pos + len));
    this.pos += len;
    return s;
  }

  valueType(what: string, code: LowbitErrorCode): GgufValueType {
    const id = this.u32(what, code);
    const t = GGUF_VALUE_TYPES[id];
    if (t === undefined) this.fail(code, `${what}: unknown GGUF value type id ${id} (known 0..12)`);
    return t;
  }

  /** Reads one value of type `t`; `what` names the key for errors. */
  value(t: GgufValueType, what: string, depth = 0): GgufValue {
    const code = "E_GGUF_METADATA";
    if (t === "string") return { type: t, value: this.string(what, code) };
    if (t === "array") {
      if (depth >= MAX_ARRAY_DEPTH) this.fail(code, `${what}: arrays nested deeper than ${MAX_ARRAY_DEPTH} levels`);
      const itemType = this.valueType(`${what} element type`, code);
      const n = this.count(`${what} element count`, minValueBytes(itemType), code);
      const items: unknown[] = [];
      for (let i = 0; i < n; i++) {
        const v = this.value(itemType, `${what}[${i}]`, depth + 1);
        items.push(v.type === "array" ? { itemType: v.itemType, value: v.value } : v.value);
      }
      return { type: "array", itemType, value: items as GgufArrayItems };
    }
    const size = SCALAR_BYTES[t]!;
    this.need(size, what, code);
    const p = this.pos;
    this.pos += size;
    const dv = this.dv;
    switch (t) {
      case "u8": return { type: t, value: dv.getUint8(p) };
      case "i8": return { type: t, value: dv.getInt8(p) };
      case "u16": return { type: t, value: dv.getUint16(p, true) };
      case "i16": return { type: t, value: dv.getInt16(p, true) };
      case "u32": return { type: t, value: dv.getUint32(p, true) };
      case "i32": return { type: t, value: dv.getInt32(p, true) };
      case "f32": return { type: t, value: dv.getFloat32(p, true) };
      case "f64": return { type: t, value: dv.getFloat64(p, true) };
      case "bool": return { type: t, value: dv.getUint8(p) !== 0 };
      case "u64": return { type: t, value: dv.getBigUint64(p, true) };
      case "i64": return { type: t, value: dv.getBigInt64(p, true) };
    }
  }
}

const INT_RANGES: Partial<Record<GgufValueType, [number, number]>> = {
  u8: [0, 0xff], i8: [-0x80, 0x7f], u16: [0, 0xffff], i16: [-0x8000, 0x7fff],
  u32: [0, 0xffffffff], i32: [-0x80000000, 0x7fffffff],
};
const BIG_RANGES: Partial<Record<GgufValueType, [bigint, bigint]>> = {
  u64: [0n, 2n ** 64n - 1n], i64: [-(2n ** 63n), 2n ** 63n - 1n],
};

/** A growable little-endian byte writer for GGUF headers. */
export class ByteWriter {
  private buf = new Uint8Array(1 << 16);
  private dv = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): number {
    if (this.length + n > this.buf.length) {
      const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
      next.set(this.buf.subarray(0, this.length));
      this.buf = next;
      this.dv = new DataView(next.buffer);
    }
    const p = this.length;
    this.length += n;
    return p;
  }

  bytes(b: Uint8Array): void {
    const p = this.reserve(b.length);
    this.buf.set(b, p);
  }
  u32(v: number): void {
    const p = this.reserve(4);
    this.dv.setUint32(p, v, true);
  }
  i32(v: number): void {
    const p = this.reserve(4);
    this.dv.setInt32(p, v, true);
  }
  u64(v: bigint | number): void {
    const p = this.reserve(8);
    this.dv.setBigUint64(p, BigInt(v), true);
  }
  i64(v: bigint | number): void {
    const p = this.reserve(8);
    this.dv.setBigInt64(p, BigInt(v), true);
  }
  string(s: string): void {
    const b = new TextEncoder().encode(s);
    this.u64(b.length);
    this.bytes(b);
  }
  zeros(n: number): void {
    this.reserve(n);
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.length);
  }

  /** Validates and writes one value of type `t` (without its type id). */
  value(t: GgufValueType, v: unknown, what: string, depth = 0): void {
    const bad = (expected: string): never => {
      const shown = typeof v === "bigint" ? `${v}n` : JSON.stringify(v) ?? String(v);
      throw new LowbitError("E_GGUF_METADATA", `${what}: ${String(shown).slice(0, 80)} is not ${expected}`);
    };
    const intRange = INT_RANGES[t];
    if (intRange) {
      if (typeof v !== "number" || !Number.isInteger(v) || v < intRange[0] || v > intRange[1]) {
        bad(`a ${t} (integer in [${intRange[0]}, ${intRange[1]}])`);
      }
      const p = this.reserve(SCALAR_BYTES[t]!);
      const n = v as number;
      if (t === "u8") this.dv.setUint8(p, n);
      else if (t === "i8") this.dv.setInt8(p, n);
      else if (t === "u16") this.dv.setUint16(p, n, true);
      else if (t === "i16") this.dv.setInt16(p, n, true);
      else if (t === "u32") this.dv.setUint32(p, n, true);
      else this.dv.setInt32(p, n, true);
      return;
    }
    const bigRange = BIG_RANGES[t];
    if (bigRange) {
      const big = typeof v === "bigint" ? v : typeof v === "number" && Number.isSafeInteger(v) ? BigInt(v) : undefined;
      if (big === undefined || big < bigRange[0] || big > bigRange[1]) bad(`a ${t} (bigint or safe integer in range)`);
      if (t === "u64") this.u64(big!);
      else this.i64(big!);
      return;
    }
    switch (t) {
      case "f32":
      case "f64":
        if (typeof v !== "number") bad(`a number (${t})`);
        if (t === "f32") {
          const p = this.reserve(4);
          this.dv.setFloat32(p, v as number, true);
        } else {
          const p = this.reserve(8);
          this.dv.setFloat64(p, v as number, true);
        }
        return;
      case "bool": {
        if (typeof v !== "boolean") bad("a boolean");
        const p = this.reserve(1);
        this.dv.setUint8(p, v ? 1 : 0);
        return;
      }
      case "string":
        if (typeof v !== "string") bad("a string");
        this.string(v as string);
        return;
      case "array": {
        if (depth >= MAX_ARRAY_DEPTH) bad(`an array nested at most ${MAX_ARRAY_DEPTH} levels`);
        const arr = v as Partial<GgufArrayValue> | undefined;
        if (typeof arr !== "object" || arr === null || !GGUF_VALUE_TYPES.includes(arr.itemType as GgufValueType)) {
          bad("an array value {itemType, value}");
        }
        if (!Array.isArray(arr!.value)) bad("an array value {itemType, value: [...]}");
        const items = arr!.value as unknown[];
        this.u32(GGUF_VALUE_TYPES.indexOf(arr!.itemType!));
        this.u64(items.length);
        for (let i = 0; i < items.length; i++) this.value(arr!.itemType!, items[i], `${what}[${i}]`, depth + 1);
        return;
      }
    }
  }
}
