import { LowbitError } from "./errors";

/** Anything `fillNormal`/`fillUniform` can write into. */
export type FloatArrayLike = Float32Array | Float64Array | number[];

const TWO_POW_26 = 67108864;
const TWO_POW_53 = 9007199254740992;

/**
 * A small seeded pseudo-random generator: xoshiro128** (Blackman and Vigna) seeded through
 * splitmix32, with 53-bit uniform doubles and Box-Muller normals. The same seed gives the same
 * stream on every host, so tests, calibration sampling and benchmarks are reproducible.
 * Not for cryptography.
 */
export class Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;
  /** Second normal of the last Box-Muller pair, when `hasSpare`. */
  private spare = 0;
  private hasSpare = false;

  constructor(seed = 0) {
    if (!Number.isFinite(seed)) {
      throw new LowbitError("E_INVALID_ARGUMENT", `Rng seed must be a finite number, got ${seed}`);
    }
    // Mix both halves of a (safe-integer) seed into the splitmix32 state.
    let x = (Math.trunc(seed) | 0) ^ Math.imul(Math.trunc(seed / 4294967296) | 0, 0x9e3779b1);
    const next = (): number => {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) | 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** The next 32 random bits as an unsigned integer in [0, 2^32). */
  nextU32(): number {
    const s1 = this.s1;
    const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9);
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return r >>> 0;
  }

  /** A uniform double in [0, 1) with 53 random bits. */
  uniform(): number {
    const a = this.nextU32() >>> 5;
    const b = this.nextU32() >>> 6;
    return (a * TWO_POW_26 + b) / TWO_POW_53;
  }

  /** A standard normal N(0, 1) (Box-Muller; pairs are generated and the second is cached). */
  normal(): number {
    if (this.hasSpare) {
      this.hasSpare = false;
      return this.spare;
    }
    const u1 = 1 - this.uniform(); // (0, 1]: log never sees 0
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    const t = 2 * Math.PI * u2;
    this.spare = r * Math.sin(t);
    this.hasSpare = true;
    return r * Math.cos(t);
  }

  /** A uniform integer in [0, n) for a positive safe integer n. */
  int(n: number): number {
    if (!Number.isSafeInteger(n) || n <= 0) {
      throw new LowbitError("E_INVALID_ARGUMENT", `Rng.int(n) needs a positive integer n, got ${n}`);
    }
    if (n <= 4294967296) {
      // Rejection sampling on 32 bits: exactly uniform.
      const limit = 4294967296 - (4294967296 % n);
      for (;;) {
        const r = this.nextU32();
        if (r < limit) return r % n;
      }
    }
    return Math.floor(this.uniform() * n);
  }

  /** Fills `arr` with N(mean, std^2) samples; returns `arr`. */
  fillNormal<T extends FloatArrayLike>(arr: T, mean = 0, std = 1): T {
    for (let i = 0; i < arr.length; i++) arr[i] = mean + std * this.normal();
    return arr;
  }

  /** Fills `arr` with uniform samples in [lo, hi); returns `arr`. */
  fillUniform<T extends FloatArrayLike>(arr: T, lo = 0, hi = 1): T {
    const w = hi - lo;
    for (let i = 0; i < arr.length; i++) arr[i] = lo + w * this.uniform();
    return arr;
  }

  /** Shuffles `arr` in place (Fisher-Yates); returns `arr`. */
  shuffle<T extends { length: number; [i: number]: unknown }>(arr: T): T {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = arr[i];
      arr[i] = arr[j];
      arr[j] = tmp;
    }
    return arr;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
