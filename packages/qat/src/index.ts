export { Variable, backward, noGrad, isGradEnabled } from "./autograd/variable";
export { add, sub, mul, scale, addRow, relu, silu, sum, mean, reshape } from "./autograd/ops-elementwise";
export { linear, matmul, embedding } from "./autograd/ops-linear";
export { rmsNorm } from "./autograd/ops-norm";
export { rope, causalAttention } from "./autograd/ops-attention";
export type { RopeOptions, AttentionOptions } from "./autograd/ops-attention";
export { crossEntropy, mseLoss } from "./autograd/ops-loss";
export { gradCheck } from "./autograd/gradcheck";
export type { GradCheckOptions, GradCheckResult } from "./autograd/gradcheck";
