import { getEngine, type KernelBuffer, LowbitError, matmulABt } from "@lowbit/tensor";

/** Column blocks of the symmetric rank-k update: only blocks on or above the diagonal are computed. */
const SYRK_BLOCK = 256;

/**
 * GPTQ's Hessian of one linear layer, H = 2/n * sum over samples of X^T X, kept as a running
 * average exactly as IST-DASLab gptq.py `add_batch` does it:
 *
 *   H *= n / (n + b);  n += b;  X *= sqrt(2 / n);  H += X^T X
 *
 * where b is the number of samples (sequences) in the batch. As in the reference, a 2-D input of
 * `tokens` rows counts as ONE sample (gptq.py unsqueezes it to a batch of 1), so H is scaled by the
 * tokens per sample; the scale cancels out of GPTQ (dampening is relative to mean(diag H)).
 *
 * H is stored in f32 [cols, cols] row-major like the reference; the X^T X product runs on the f32
 * GEMM of @lowbit/tensor, blockwise over the upper triangle (H is symmetric) and mirrored. The
 * scaled transpose of X lives in kernel memory, so the GEMM reads it in place (no copy per block),
 * and with kernel threads on (`setKernelThreads(n)` of @lowbit/tensor) every block's GEMM is split
 * over the threads: H is bit-identical to one thread.
 */
export class HessianAccumulator {
  readonly cols: number;
  /** H, f32 [cols, cols] row-major, symmetric. */
  readonly h: Float32Array;
  private n = 0;
  /** The batch being given in parts (beginBatch .. endBatch). */
  private open: { buf: KernelBuffer; tokens: number; samples: number; filled: number; alpha: number } | undefined;

  constructor(cols: number) {
    if (!(Number.isInteger(cols) && cols > 0)) {
      throw new LowbitError("E_INVALID_ARGUMENT", `HessianAccumulator: cols must be a positive integer, got ${cols}`);
    }
    this.cols = cols;
    this.h = new Float32Array(cols * cols);
  }

  /** Samples (sequences) seen so far: the reference's `nsamples`. */
  get nSamples(): number {
    return this.n;
  }

  /**
   * Adds a batch of activations x [tokens, cols] row-major (the linear layer's inputs) that
   * represents `samples` sequences (default 1, as one call per calibration window in gptq.py).
   * The same as beginBatch(tokens, samples), addRows(x, tokens), endBatch().
   */
  addBatch(x: Float32Array, tokens: number, samples = 1): void {
    if (Number.isInteger(tokens) && tokens > 0 && x.length !== tokens * this.cols) {
      throw new LowbitError(
        "E_SHAPE_MISMATCH",
        `HessianAccumulator.addBatch: input has ${x.length} values, expected ${tokens} tokens x ${this.cols} columns`,
      );
    }
    this.beginBatch(tokens, samples);
    this.addRows(x, tokens);
    this.endBatch();
  }

  /**
   * Starts a batch of `tokens` rows representing `samples` sequences whose rows then arrive in
   * parts (addRows, in order) and are accumulated by endBatch: H is bit-identical to one
   * addBatch of the whole batch, while only the scaled transpose of the batch (in kernel memory)
   * is held, not the batch itself.
   */
  beginBatch(tokens: number, samples = 1): void {
    const cols = this.cols;
    if (this.open) {
      throw new LowbitError("E_INVALID_ARGUMENT", "HessianAccumulator.beginBatch: the previous batch was not ended (endBatch)");
    }
    if (!(Number.isInteger(tokens) && tokens > 0)) {
      throw new LowbitError("E_INVALID_ARGUMENT", `HessianAccumulator: a batch's tokens must be a positive integer, got ${tokens}`);
    }
    if (!(Number.isInteger(samples) && samples > 0)) {
      throw new LowbitError("E_INVALID_ARGUMENT", `HessianAccumulator: a batch's samples must be a positive integer, got ${samples}`);
    }
    // Xt = sqrt(2/n) * X^T with n counting this batch, [cols, tokens] (rows of Xt are contiguous, so
    // column blocks are subarrays); one transpose buffer alive at a time (freed by endBatch; the
    // allocator reuses it). H and n change only in endBatch.
    const alpha = Math.fround(Math.sqrt(2 / (this.n + samples)));
    this.open = { buf: getEngine().buffer(cols * tokens * 4), tokens, samples, filled: 0, alpha };
  }

  /** Adds the next `rows` rows x [rows, cols] of the batch begun by beginBatch. */
  addRows(x: Float32Array, rows: number): void {
    const cols = this.cols;
    const b = this.open;
    if (!b) throw new LowbitError("E_INVALID_ARGUMENT", "HessianAccumulator.addRows: no batch begun (beginBatch)");
    if (!(Number.isInteger(rows) && rows > 0 && b.filled + rows <= b.tokens)) {
      this.abortBatch();
      throw new LowbitError(
        "E_SHAPE_MISMATCH",
        `HessianAccumulator.addRows: ${rows} rows do not fit the batch (${b.filled} of ${b.tokens} tokens given)`,
      );
    }
    if (x.length !== rows * cols) {
      this.abortBatch();
      throw new LowbitError(
        "E_SHAPE_MISMATCH",
        `HessianAccumulator.addRows: input has ${x.length} values, expected ${rows} tokens x ${cols} columns`,
      );
    }
    const { tokens, alpha } = b;
    // a fresh view: kernel calls since the last part may have grown (and so detached) the memory
    const xt = b.buf.f32(0, cols * tokens);
    // in bands of 32 columns, so the 32 rows of Xt being written stay in cache
    for (let c0 = 0; c0 < cols; c0 += 32) {
      const c1 = Math.min(cols, c0 + 32);
      for (let t = 0; t < rows; t++) {
        const xo = t * cols;
        const to = b.filled + t;
        for (let c = c0; c < c1; c++) xt[c * tokens + to] = alpha * x[xo + c]!;
      }
    }
    b.filled += rows;
  }

  /** Accumulates the batch begun by beginBatch once all its rows were given, and frees its buffer. */
  endBatch(): void {
    const b = this.open;
    if (!b) throw new LowbitError("E_INVALID_ARGUMENT", "HessianAccumulator.endBatch: no batch begun (beginBatch)");
    if (b.filled !== b.tokens) {
      this.abortBatch();
      throw new LowbitError("E_SHAPE_MISMATCH", `HessianAccumulator.endBatch: ${b.filled} of the batch's ${b.tokens} tokens were given`);
    }
    try {
      const h = this.h;
      // H *= n / (n + b)
      const decay = Math.fround(this.n / (this.n + b.samples));
      if (this.n > 0) {
        for (let i = 0; i < h.length; i++) h[i] = h[i]! * decay;
      }
      this.n += b.samples;
      this.accumulate(b.buf, b.tokens);
    } finally {
      this.abortBatch();
    }
  }

  /** Frees a begun batch's buffer (H and the sample count stay as they were before it). */
  private abortBatch(): void {
    this.open?.buf.dispose();
    this.open = undefined;
  }

  /** H += Xt Xt^T over upper-triangular blocks, mirrored; Xt [cols, tokens] in kernel memory. */
  private accumulate(buf: KernelBuffer, tokens: number): void {
    const { cols, h } = this;
    for (let i0 = 0; i0 < cols; i0 += SYRK_BLOCK) {
      const i1 = Math.min(cols, i0 + SYRK_BLOCK);
      for (let j0 = i0; j0 < cols; j0 += SYRK_BLOCK) {
        const j1 = Math.min(cols, j0 + SYRK_BLOCK);
        // views made afresh per block: a kernel call may grow (and so detach) the memory
        const a = buf.f32(i0 * tokens * 4, (i1 - i0) * tokens);
        const b = buf.f32(j0 * tokens * 4, (j1 - j0) * tokens);
        const blk = matmulABt(a, b, i1 - i0, j1 - j0, tokens);
        const bw = j1 - j0;
        for (let i = i0; i < i1; i++) {
          const ro = (i - i0) * bw;
          const ho = i * cols;
          for (let j = j0; j < j1; j++) {
            const v = blk[ro + j - j0]!;
            h[ho + j] = h[ho + j]! + v;
            if (j0 !== i0) h[j * cols + i] = h[j * cols + i]! + v;
          }
        }
      }
    }
  }

  /** Frees the transpose buffer of a batch begun and not ended (the buffer is otherwise not kept between batches). */
  releaseScratch(): void {
    this.abortBatch();
  }
}
