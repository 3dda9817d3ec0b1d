import { LowbitError } from "../errors";

/**
 * Rewrites a compiled kernel module so that it imports a *shared* memory. Kernel modules are built
 * once by tools/build/wasm.mjs with an unshared `env.memory` import; a module that imports an
 * unshared memory cannot be instantiated over a shared one (and the reverse), so the engine,
 * when its memory is shared (threads), instantiates this rewritten variant instead. Only the limits
 * of the memory import change (flags 0x03 = shared with a maximum, and the maximum in pages); the
 * code does not: plain loads and stores are valid on a shared memory. The result is byte-identical
 * to compiling the kernel with `asc --sharedMemory --maximumMemory <pages> --enable threads`
 * (checked for every kernel of every package with `pnpm wasm --verify-shared` plus a comparison).
 */
export function toSharedMemoryModule(bytes: Uint8Array, maximumPages: number): Uint8Array<ArrayBuffer> {
  const fail = (what: string): never => {
    throw new LowbitError("E_KERNEL", `cannot make a shared-memory variant of a kernel module: ${what}`);
  };
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    fail("not a WebAssembly module");
  }
  let pos = 8;
  const readU32 = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (pos >= bytes.length) fail("truncated LEB128");
      const b = bytes[pos++]!;
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
    }
  };
  while (pos < bytes.length) {
    const secStart = pos;
    const id = bytes[pos++]!;
    const size = readU32();
    const start = pos;
    const end = start + size;
    if (id !== 2) {
      pos = end;
      continue;
    }
    const count = readU32();
    for (let i = 0; i < count; i++) {
      const skipName = () => {
        const len = readU32();
        pos += len;
      };
      skipName();
      skipName();
      const kind = bytes[pos++]!;
      if (kind === 0) readU32();
      else if (kind === 1) {
        pos++; // reftype
        const flags = bytes[pos++]!;
        readU32();
        if (flags & 1) readU32();
      } else if (kind === 3) pos += 2;
      else if (kind === 2) {
        const limStart = pos;
        const flags = bytes[pos++]!;
        const min = readU32();
        if (flags & 1) readU32();
        const limEnd = pos;
        if (flags & 2) return bytes.slice(); // already shared
        const limits = [0x03, ...leb(min), ...leb(maximumPages)];
        const body = [
          ...bytes.subarray(start, limStart),
          ...limits,
          ...bytes.subarray(limEnd, end),
        ];
        const before = bytes.subarray(0, secStart);
        const after = bytes.subarray(end);
        const sizeBytes = leb(body.length);
        const result = new Uint8Array(before.length + 1 + sizeBytes.length + body.length + after.length);
        let o = 0;
        result.set(before, o);
        o += before.length;
        result[o++] = 2;
        result.set(sizeBytes, o);
        o += sizeBytes.length;
        result.set(body, o);
        o += body.length;
        result.set(after, o);
        return result;
      } else fail(`unknown import kind ${kind}`);
    }
    fail("no memory import (kernel modules import env.memory)");
  }
  return fail("no import section (kernel modules import env.memory)");
}

function leb(v: number): number[] {
  const out: number[] = [];
  do {
    let b = v % 128;
    v = Math.floor(v / 128);
    if (v > 0) b |= 0x80;
    out.push(b);
  } while (v > 0);
  return out;
}
