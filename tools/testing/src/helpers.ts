/** Whether two float or int32 arrays hold the same bits element by element (NaN payloads and -0 included). */
export function bitsEqual(a: Float32Array | Int32Array, b: Float32Array | Int32Array): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** A Map that counts its writes (e.g. how often linears sharing a memo filled it). */
export class CountingMap<K, V> extends Map<K, V> {
  writes = 0;
  override set(key: K, value: V): this {
    this.writes++;
    return super.set(key, value);
  }
}

/** FNV-1a over the bytes of x's values (pins a kernel's exact results in a test: its summation order). */
export function fnv1a(x: Float32Array): string {
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  let h = 0x811c9dc5;
  for (let i = 0; i < u.length; i++) {
    let v = u[i]!;
    for (let byte = 0; byte < 4; byte++) {
      h = Math.imul(h ^ (v & 0xff), 0x01000193) >>> 0;
      v >>>= 8;
    }
  }
  return h.toString(16).padStart(8, "0");
}
