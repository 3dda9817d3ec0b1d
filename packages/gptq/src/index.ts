export { HessianAccumulator } from "./hessian";
export { dampedInverseHessian } from "./inverse-hessian";
export type { InverseHessian, DampOptions } from "./inverse-hessian";
export { gptqQuantize } from "./gptq-quantize";
export type { GptqOptions, GptqResult } from "./gptq-quantize";
export { gptqPlugin, gptqQuantizeLayer } from "./gptq-plugin";
export type { GptqPluginOptions } from "./gptq-plugin";
