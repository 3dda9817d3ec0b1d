import { LowbitError } from "@lowbit/tensor";
import { checkSameShape, result, type Variable } from "./variable";

/** a + b (same shape). */
export function add(a: Variable, b: Variable): Variable {
  checkSameShape("add", a, b);
  const av = a.value;
  const bv = b.value;
  const out = new Float32Array(av.length);
  for (let i = 0; i < out.length; i++) out[i] = av[i]! + bv[i]!;
  return result(out, a.shape, [a, b], (g) => {
    if (a.requiresGrad) addInto(a.gradBuffer(), g);
    if (b.requiresGrad) addInto(b.gradBuffer(), g);
  });
}

/** a - b (same shape). */
export function sub(a: Variable, b: Variable): Variable {
  checkSameShape("sub", a, b);
  const av = a.value;
  const bv = b.value;
  const out = new Float32Array(av.length);
  for (let i = 0; i < out.length; i++) out[i] = av[i]! - bv[i]!;
  return result(out, a.shape, [a, b], (g) => {
    if (a.requiresGrad) addInto(a.gradBuffer(), g);
    if (b.requiresGrad) {
      const gb = b.gradBuffer();
      for (let i = 0; i < g.length; i++) gb[i]! -= g[i]!;
    }
  });
}

/** a * b elementwise (same shape). */
export function mul(a: Variable, b: Variable): Variable {
  checkSameShape("mul", a, b);
  const av = a.value;
  const bv = b.value;
  const out = new Float32Array(av.length);
  for (let i = 0; i < out.length; i++) out[i] = av[i]! * bv[i]!;
  return result(out, a.shape, [a, b], (g) => {
    if (a.requiresGrad) {
      const ga = a.gradBuffer();
      for (let i = 0; i < g.length; i++) ga[i]! += g[i]! * bv[i]!;
    }
    if (b.requiresGrad) {
      const gb = b.gradBuffer();
      for (let i = 0; i < g.length; i++) gb[i]! += g[i]! * av[i]!;
    }
  });
}

/** c * a for a constant c. */
export function scale(a: Variable, c: number): Variable {
  const av = a.value;
  const out = new Float32Array(av.length);
  for (let i = 0; i < out.length; i++) out[i] = av[i]! * c;
  return result(out, a.shape, [a], (g) => {
    const ga = a.gradBuffer();
    for (let i = 0; i < g.length; i++) ga[i]! += g[i]! * c;
  });
}

/** x [rows, n] + b [n] broadcast over rows (a bias). */
export function addRow(x: Variable, b: Variable): Variable {
  const n = x.cols;
  if (b.size !== n) {
    throw new LowbitError("E_SHAPE_MISMATCH", `addRow: row vector has ${b.size} elements, x has ${n} columns`);
  }
  const xv = x.value;
  const bv = b.value;
  const out = new Float32Array(xv.length);
  for (let i = 0; i < out.length; i += n) for (let j = 0; j < n; j++) out[i + j] = xv[i + j]! + bv[j]!;
  return result(out, x.shape, [x, b], (g) => {
    if (x.requiresGrad) addInto(x.gradBuffer(), g);
    if (b.requiresGrad) {
      const acc = new Float64Array(n);
      for (let i = 0; i < g.length; i += n) for (let j = 0; j < n; j++) acc[j]! += g[i + j]!;
      const gb = b.gradBuffer();
      for (let j = 0; j < n; j++) gb[j]! += acc[j]!;
    }
  });
}

/** max(x, 0); the gradient at exactly 0 is 0 (as PyTorch). */
export function relu(x: Variable): Variable {
  const xv = x.value;
  const out = new Float32Array(xv.length);
  for (let i = 0; i < out.length; i++) out[i] = Math.max(xv[i]!, 0);
  return result(out, x.shape, [x], (g) => {
    const gx = x.gradBuffer();
    for (let i = 0; i < g.length; i++) if (xv[i]! > 0) gx[i]! += g[i]!;
  });
}

/** SiLU: x * sigmoid(x). */
export function silu(x: Variable): Variable {
  const xv = x.value;
  const out = new Float32Array(xv.length);
  for (let i = 0; i < out.length; i++) {
    const v = xv[i]!;
    out[i] = v / (1 + Math.exp(-v));
  }
  return result(out, x.shape, [x], (g) => {
    const gx = x.gradBuffer();
    for (let i = 0; i < g.length; i++) {
      const v = xv[i]!;
      const s = 1 / (1 + Math.exp(-v));
      gx[i]! += g[i]! * s * (1 + v * (1 - s));
    }
  });
}

/** Sum of all elements (a scalar). */
export function sum(x: Variable): Variable {
  const xv = x.value;
  let s = 0;
  for (let i = 0; i < xv.length; i++) s += xv[i]!;
  return result(Float32Array.of(s), [], [x], (g) => {
    const gx = x.gradBuffer();
    const g0 = g[0]!;
    for (let i = 0; i < gx.length; i++) gx[i]! += g0;
  });
}

/** Mean of all elements (a scalar). */
export function mean(x: Variable): Variable {
  const n = x.size;
  const xv = x.value;
  let s = 0;
  for (let i = 0; i < n; i++) s += xv[i]!;
  return result(Float32Array.of(s / n), [], [x], (g) => {
    const gx = x.gradBuffer();
    const g0 = g[0]! / n;
    for (let i = 0; i < gx.length; i++) gx[i]! += g0;
  });
}

/** Same values, new shape (same element count); the gradient is reshaped back. */
export function reshape(x: Variable, shape: readonly number[]): Variable {
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== x.size) {
    throw new LowbitError(
      "E_SHAPE_MISMATCH",
      `reshape: [${x.shape.join(", ")}] (${x.size} elements) cannot become [${shape.join(", ")}] (${n})`,
    );
  }
  return result(x.value, shape, [x], (g) => addInto(x.gradBuffer(), g));
}

/** dst += src, elementwise. */
export function addInto(dst: Float32Array, src: Float32Array): void {
  for (let i = 0; i < dst.length; i++) dst[i]! += src[i]!;
}
