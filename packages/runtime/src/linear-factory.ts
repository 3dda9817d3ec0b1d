import type { Linear } from "@lowbit/tensor";
import { JsF32Linear } from "./f32-linear";

/** The f32 backend every loader uses for weights kept in full precision. */
export function makeF32Linear(weight: Float32Array, outFeatures: number, inFeatures: number, bias?: Float32Array): Linear {
  return new JsF32Linear(weight, outFeatures, inFeatures, bias);
}
