import { LowbitError } from "@lowbit/tensor";
import { gemmAB, gemmABt, gemmAtB } from "./gemm";
import { addInto } from "./ops-elementwise";
import { result, type Variable } from "./variable";

/**
 * y = x W^T (+ b): x [m, in] (any leading dims, flattened), W [out, in] (nn.Linear layout),
 * b [out]. Backward: dx = dy W, dW = dy^T x, db = column sums of dy.
 */
export function linear(x: Variable, w: Variable, b?: Variable): Variable {
  if (w.shape.length !== 2) {
    throw new LowbitError("E_SHAPE_MISMATCH", `linear: weight${w.name ? ` "${w.name}"` : ""} must be 2-D [out, in], got [${w.shape.join(", ")}]`);
  }
  const [n, k] = w.shape as [number, number];
  if (x.cols !== k) {
    throw new LowbitError(
      "E_SHAPE_MISMATCH",
      `linear: input has ${x.cols} features, weight${w.name ? ` "${w.name}"` : ""} [${n}, ${k}] expects ${k}`,
    );
  }
  if (b && b.size !== n) {
    throw new LowbitError("E_SHAPE_MISMATCH", `linear: bias has ${b.size} elements, expected ${n}`);
  }
  const m = x.rows;
  const out = gemmABt(x.value, w.value, m, n, k);
  if (b) {
    const bv = b.value;
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) out[i * n + j]! += bv[j]!;
  }
  const shape = [...x.shape.slice(0, -1), n];
  const parents = b ? [x, w, b] : [x, w];
  return result(out, shape, parents, (g) => {
    if (x.requiresGrad) addInto(x.gradBuffer(), gemmAB(g, w.value, m, k, n));
    if (w.requiresGrad) gemmAtB(g, x.value, m, n, k, w.gradBuffer(), true);
    if (b?.requiresGrad) {
      const acc = new Float64Array(n);
      for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) acc[j]! += g[i * n + j]!;
      const gb = b.gradBuffer();
      for (let j = 0; j < n; j++) gb[j]! += acc[j]!;
    }
  });
}

/** C = A B for A [m, k], B [k, n] (both 2-D). */
export function matmul(a: Variable, b: Variable): Variable {
  if (a.shape.length !== 2 || b.shape.length !== 2 || a.shape[1] !== b.shape[0]) {
    throw new LowbitError(
      "E_SHAPE_MISMATCH",
      `matmul: cannot multiply [${a.shape.join(", ")}] by [${b.shape.join(", ")}]`,
    );
  }
  const [m, k] = a.shape as [number, number];
  const n = b.shape[1]!;
  const out = gemmAB(a.value, b.value, m, n, k);
  return result(out, [m, n], [a, b], (g) => {
    // dA = dC B^T, dB = A^T dC
    if (a.requiresGrad) addInto(a.gradBuffer(), gemmABt(g, b.value, m, k, n));
    if (b.requiresGrad) gemmAtB(a.value, g, m, k, n, b.gradBuffer(), true);
  });
}

/**
 * Rows of `table` [vocab, dim] picked by `ids` -> [ids.length, dim]. Backward scatter-adds into the
 * table's gradient (repeated ids accumulate).
 */
export function embedding(table: Variable, ids: ArrayLike<number>): Variable {
  if (table.shape.length !== 2) {
    throw new LowbitError("E_SHAPE_MISMATCH", `embedding: table must be 2-D [vocab, dim], got [${table.shape.join(", ")}]`);
  }
  const [vocab, dim] = table.shape as [number, number];
  const n = ids.length;
  const tv = table.value;
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const id = ids[i]!;
    if (!(Number.isInteger(id) && id >= 0 && id < vocab)) {
      throw new LowbitError("E_INVALID_ARGUMENT", `embedding: id ${id} at position ${i} is outside 0..${vocab - 1}`);
    }
    out.set(tv.subarray(id * dim, id * dim + dim), i * dim);
  }
  const idsCopy = Int32Array.from(ids);
  return result(out, [n, dim], [table], (g) => {
    const gt = table.gradBuffer();
    for (let i = 0; i < n; i++) {
      const base = idsCopy[i]! * dim;
      for (let j = 0; j < dim; j++) gt[base + j]! += g[i * dim + j]!;
    }
  });
}
