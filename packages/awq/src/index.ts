export { awqPseudoQuantize } from "./awq-quantizer";
export type { AwqQuantizerOptions } from "./awq-quantizer";
export { activationMean, weightMean, candidateScales, scaleColumns, divideRows, divideColumns } from "./scales";
export { searchClip, applyClip } from "./clip";
export type { ClipOptions } from "./clip";
export { awqPlugin, awqQuantizeLayer, llamaScaleGroups } from "./awq-plugin";
export type { AwqPluginOptions } from "./awq-plugin";
