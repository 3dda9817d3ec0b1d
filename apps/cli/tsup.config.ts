import { lowbitTsup } from "../../tools/build/tsup";

export default lowbitTsup({ index: "src/index.ts", main: "src/main.ts" }, { platform: "node" });
