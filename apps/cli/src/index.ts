export { runCli, rootCommand } from "./cli";
export type { IoOptions, Sink } from "./ui/io";
