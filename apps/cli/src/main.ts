import { runCli } from "./cli";

/**
 * The `lowbit` executable: run the CLI on the process arguments and exit with its code (writes to
 * pipes and files are synchronous on Linux and macOS, so nothing is lost by exiting at once; worker
 * threads a kernel pool may keep alive do not hold the process open).
 */
const code = await runCli(process.argv.slice(2));
process.exit(code);
