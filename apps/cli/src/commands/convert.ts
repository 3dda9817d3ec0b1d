import { LowbitError } from "@lowbit/tensor";
import { commonArgs, lowbitCommand } from "../command";

export default lowbitCommand({
  args: { ...commonArgs },
  run() {
    throw new LowbitError("E_UNSUPPORTED", "lowbit convert is not available yet in this build.");
  },
});
