import { LowbitError } from "@lowbit/tensor";
import type { ModelDescription } from "./describe";
import type { ResolvedModel } from "./resolve";

export async function describeGguf(model: ResolvedModel, _withStats: boolean): Promise<ModelDescription> {
  throw new LowbitError("E_UNSUPPORTED", `${model.path}: reading GGUF is not available in this build yet.`);
}
