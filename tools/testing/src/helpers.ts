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
