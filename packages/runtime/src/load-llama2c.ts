import { readLlama2cCheckpoint } from "@lowbit/formats";
import { type BuildOptions, buildModel, memorySource } from "./build";
import { type LlamaConfig, makeConfig } from "./config";
import type { LlamaModel } from "./model";

/**
 * Loads a llama2.c float32 checkpoint. RoPE rotates interleaved pairs with base 10000, RMSNorm eps
 * 1e-5; BOS is 1; generation stops at EOS (2) and, as run.c does, at BOS (1), which these models
 * emit between stories.
 */
export async function loadLlama2c(path: string, options: BuildOptions & { overrides?: Partial<LlamaConfig> } = {}): Promise<LlamaModel> {
  const ckpt = await readLlama2cCheckpoint(path);
  const c = ckpt.config;
  const cfg = makeConfig({
    architecture: "llama2.c",
    dim: c.dim,
    hiddenDim: c.hiddenDim,
    nLayers: c.nLayers,
    nHeads: c.nHeads,
    nKvHeads: c.nKvHeads,
    vocabSize: c.vocabSize,
    maxSeqLen: c.seqLen,
    normEps: 1e-5,
    ropeTheta: 10000,
    ropeStyle: "interleaved",
    tiedEmbeddings: c.sharedClassifier,
    bosTokenId: 1,
    eosTokenIds: [2, 1],
    ...options.overrides,
  });
  return buildModel(cfg, memorySource(ckpt.tensors), options);
}
