import { isLowbitError, LowbitError, upperCholeskyOfInverse } from "@lowbit/tensor";

/** The dampened inverse Hessian factor GPTQ works with, and how much dampening it took. */
export interface InverseHessian {
  /** Upper Cholesky factor U of (H + damp I)^-1 (U^T U = (H + damp I)^-1), f32 [n, n] row-major. */
  hinv: Float32Array;
  /** The percdamp finally used (the requested one unless Cholesky failed and it was raised). */
  percdamp: number;
  /** The absolute value added to the diagonal: percdamp * mean(diag H). */
  damp: number;
  /** How many times Cholesky failed and percdamp was raised before it succeeded. */
  retries: number;
}

export interface DampOptions {
  /** Fraction of mean(diag H) added to the diagonal. Default 0.01 (IST-DASLab gptq.py). */
  percdamp?: number;
  /**
   * Added to percdamp each time Cholesky fails, then retried (as GPTQModel does). 0 disables the
   * retry. Default 0.01. Gives up with E_NOT_POSITIVE_DEFINITE once percdamp would reach 1.
   */
  dampAutoIncrement?: number;
  /** Tensor name for messages. */
  name?: string;
}

/**
 * Hinv of gptq.py: H[diag] += percdamp * mean(diag H); Hinv = cholesky(cholesky_inverse(cholesky(H)),
 * upper). `h` is f64 [n, n] with dead inputs already fixed (and permuted, for act-order); it is not
 * modified. Or a function building that matrix afresh: it is then called once per attempt and the
 * factorization runs in place in its result, so only one n x n f64 matrix is alive at a time.
 * When a Cholesky factorization fails the dampening is raised by `dampAutoIncrement` and retried,
 * and the result says how often.
 */
export function dampedInverseHessian(
  h: Float64Array | (() => Float64Array),
  n: number,
  options: DampOptions = {},
): InverseHessian {
  const name = options.name ?? "weight";
  let percdamp = options.percdamp ?? 0.01;
  const inc = options.dampAutoIncrement ?? 0.01;
  if (!(percdamp >= 0 && percdamp < 1) || !(inc >= 0 && inc < 1)) {
    throw new LowbitError(
      "E_INVALID_ARGUMENT",
      `GPTQ(${name}): percdamp must be in [0, 1) and dampAutoIncrement in [0, 1), got ${percdamp} and ${inc}`,
    );
  }
  const build = typeof h === "function" ? h : undefined;
  const first = build ? build() : (h as Float64Array);
  if (first.length !== n * n) {
    throw new LowbitError("E_SHAPE_MISMATCH", `GPTQ(${name}): Hessian has ${first.length} values, expected ${n}x${n}`);
  }
  let meanDiag = 0;
  for (let i = 0; i < n; i++) meanDiag += first[i * n + i]!;
  // torch.mean over an f32 diagonal; the f64 mean differs only in the last bits
  meanDiag = Math.fround(meanDiag / n);
  if (!Number.isFinite(meanDiag)) {
    throw new LowbitError("E_NON_FINITE", `GPTQ(${name}): the Hessian diagonal is not finite (mean ${meanDiag})`);
  }
  let fresh: Float64Array | undefined = build ? first : undefined;
  const copy = build ? undefined : new Float64Array(n * n);
  let retries = 0;
  for (;;) {
    const damp = Math.fround(percdamp * meanDiag);
    let work: Float64Array;
    if (build) {
      work = fresh ?? build();
      fresh = undefined;
    } else {
      work = copy!;
      work.set(h as Float64Array);
    }
    for (let i = 0; i < n; i++) work[i * n + i] = Math.fround(work[i * n + i]! + damp);
    try {
      const u = upperCholeskyOfInverse(work, n, { inPlace: true });
      const hinv = new Float32Array(n * n);
      for (let i = 0; i < n * n; i++) hinv[i] = u[i]!;
      return { hinv, percdamp, damp, retries };
    } catch (e) {
      if (!(isLowbitError(e) && e.code === "E_NOT_POSITIVE_DEFINITE")) throw e;
      const next = percdamp + inc;
      if (inc === 0 || next >= 1) {
        throw new LowbitError(
          "E_NOT_POSITIVE_DEFINITE",
          `GPTQ(${name}): the dampened Hessian is not positive definite even with percdamp ${percdamp}` +
            (inc === 0 ? " (automatic increase disabled)" : "") +
            "; check the calibration inputs for NaN/Inf or raise percdamp",
          { cause: e },
        );
      }
      percdamp = next;
      retries++;
    }
  }
}
