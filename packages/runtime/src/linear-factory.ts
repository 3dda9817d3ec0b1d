import { F32Linear, type Linear } from "@lowbit/tensor";

/** The f32 backend every loader uses for weights kept in full precision (resident in kernel memory). */
export function makeF32Linear(weight: Float32Array, outFeatures: number, inFeatures: number, bias?: Float32Array): Linear {
  return new F32Linear(weight, outFeatures, inFeatures, bias);
}
