import { lowbitTsup } from "../../tools/build/tsup";

export default lowbitTsup({ index: "src/index.ts" }, { platform: "node" });
