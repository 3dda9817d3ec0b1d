import { LowbitError } from "@lowbit/tensor";
import { packBits, unpackBits } from "./bitpack";
import { groupCount, hasTrivialGroups, type QuantizedMatrix } from "./quantized-matrix";

/**
 * ONNX Runtime com.microsoft.MatMulNBits initializers (Y = A · dequant(B)^T):
 * - B uint8 [N, nBlocks, blob] with blob = blockSize*bits/8: each output row's codes along K as a
 *   low-bits-first stream (4-bit: low nibble first).
 * - scales [N, nBlocks] (f32 here; the type of A).
 * - zero_points (optional) uint8 [N, ceil(nBlocks*bits/8)]: each row's zero points packed the same
 *   way, rows padded to whole bytes; absent means 2^(bits-1) (symmetric).
 * Attributes: K, N, bits, block_size (a power of two >= 16), accuracy_level.
 */
export interface MatMulNBitsWeights {
  K: number;
  N: number;
  bits: number;
  blockSize: number;
  B: Uint8Array;
  scales: Float32Array;
  zeroPoints?: Uint8Array;
  shapes: { B: [number, number, number]; scales: [number, number]; zeroPoints?: [number] };
}

function checkBlock(bits: number, blockSize: number, K: number, name: string): void {
  if (![2, 4, 8].includes(bits)) {
    throw new LowbitError("E_UNSUPPORTED", `MatMulNBits ${name}: bits must be 2, 4 or 8, got ${bits}`);
  }
  if (!(blockSize >= 16 && (blockSize & (blockSize - 1)) === 0)) {
    throw new LowbitError("E_SHAPE_MISMATCH", `MatMulNBits ${name}: block size ${blockSize} must be a power of two >= 16`);
  }
  if (K % blockSize !== 0) {
    throw new LowbitError(
      "E_SHAPE_MISMATCH",
      `MatMulNBits ${name}: K ${K} is not a multiple of block size ${blockSize} (a padded last block is not supported)`,
    );
  }
}

/**
 * Packs a QuantizedMatrix into MatMulNBits initializers. Zero points are written unless every zero
 * equals 2^(bits-1) (the operator's default), or when `zeroPoints: true` forces them.
 */
export function packMatMulNBits(qm: QuantizedMatrix, options: { zeroPoints?: boolean; name?: string } = {}): MatMulNBitsWeights {
  const name = options.name ?? "weight";
  const { bits, rows: N, cols: K, groupSize } = qm;
  checkBlock(bits, groupSize, K, name);
  if (!hasTrivialGroups(qm)) {
    throw new LowbitError("E_UNSUPPORTED", `MatMulNBits ${name}: act-order g_idx is not supported; reorder the input columns first`);
  }
  const nb = groupCount(qm);
  const blob = (groupSize * bits) / 8;
  const B = new Uint8Array(N * nb * blob);
  for (let n = 0; n < N; n++) packBits(qm.q.subarray(n * K, (n + 1) * K), bits, B.subarray(n * K * bits / 8));
  const mid = 1 << (bits - 1);
  const maxq = (1 << bits) - 1;
  let needZp = options.zeroPoints ?? false;
  for (let i = 0; i < qm.zeros.length; i++) {
    const z = qm.zeros[i]!;
    if (!(Number.isInteger(z) && z >= 0 && z <= maxq)) {
      throw new LowbitError("E_INVALID_ARGUMENT", `MatMulNBits ${name}: zero point ${z} at ${i} is not an integer in 0..${maxq}`);
    }
    if (z !== mid) needZp = true;
  }
  const out: MatMulNBitsWeights = {
    K,
    N,
    bits,
    blockSize: groupSize,
    B,
    scales: Float32Array.from(qm.scales),
    shapes: { B: [N, nb, blob], scales: [N, nb] },
  };
  if (needZp) {
    const zpRow = Math.ceil((nb * bits) / 8);
    const zp = new Uint8Array(N * zpRow);
    for (let n = 0; n < N; n++) packBits(qm.zeros.subarray(n * nb, (n + 1) * nb), bits, zp.subarray(n * zpRow));
    out.zeroPoints = zp;
    out.shapes.zeroPoints = [N * zpRow];
  }
  return out;
}

/** Unpacks MatMulNBits initializers into a QuantizedMatrix. */
export function unpackMatMulNBits(
  w: Pick<MatMulNBitsWeights, "K" | "N" | "bits" | "blockSize" | "B" | "scales" | "zeroPoints">,
  name = "weight",
): QuantizedMatrix {
  const { K, N, bits, blockSize } = w;
  checkBlock(bits, blockSize, K, name);
  const nb = K / blockSize;
  if (w.B.length !== (N * K * bits) / 8) {
    throw new LowbitError("E_SHAPE_MISMATCH", `MatMulNBits ${name}: B has ${w.B.length} bytes, expected ${N}x${nb}x${(blockSize * bits) / 8}`);
  }
  if (w.scales.length !== N * nb) {
    throw new LowbitError("E_SHAPE_MISMATCH", `MatMulNBits ${name}: scales has ${w.scales.length} entries, expected ${N}x${nb}`);
  }
  const q = new Uint8Array(N * K);
  for (let n = 0; n < N; n++) unpackBits(w.B.subarray((n * K * bits) / 8), bits, K, q.subarray(n * K));
  const zeros = new Float32Array(N * nb);
  if (w.zeroPoints) {
    const zpRow = Math.ceil((nb * bits) / 8);
    if (w.zeroPoints.length !== N * zpRow) {
      throw new LowbitError("E_SHAPE_MISMATCH", `MatMulNBits ${name}: zero_points has ${w.zeroPoints.length} bytes, expected ${N * zpRow}`);
    }
    const tmp = new Uint8Array(nb);
    for (let n = 0; n < N; n++) {
      unpackBits(w.zeroPoints.subarray(n * zpRow), bits, nb, tmp);
      zeros.set(tmp, n * nb);
    }
  } else {
    zeros.fill(1 << (bits - 1));
  }
  const sym = zeros.every((z) => z === 1 << (bits - 1));
  return { bits, groupSize: blockSize, rows: N, cols: K, sym, q, scales: Float32Array.from(w.scales), zeros };
}
