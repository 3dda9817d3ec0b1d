import fs from "node:fs";
import { type LlamaModel, Llama2cTokenizer, loadLlama2c } from "@lowbit/runtime";
import { dataFile } from "@lowbit/testing";
import { type CalibrationSet, encodeDocuments, sampleWindows, splitOnBlankLines } from "./dataset";

/** stories260K from the shared data folder (tests only). */
export function loadStories(): Promise<LlamaModel> {
  return loadLlama2c(dataFile("stories260K", "stories260K.bin"));
}

let stream: Int32Array | undefined;

/** Token stream of the first 300 TinyStories documents, each with BOS (tests only). */
export async function storiesStream(): Promise<Int32Array> {
  if (!stream) {
    const tok = await Llama2cTokenizer.fromFile(dataFile("stories260K", "tok512.bin"));
    const docs = splitOnBlankLines(fs.readFileSync(dataFile("text", "tinystories-valid.txt"), "utf8")).slice(0, 300);
    stream = encodeDocuments(docs, tok);
  }
  return stream;
}

/** A small seeded calibration set from the stream. */
export async function smallCalibration(windows: number, seqLen: number, seed = 0): Promise<CalibrationSet> {
  return sampleWindows(await storiesStream(), { windows, seqLen, seed, bosId: 1 });
}
