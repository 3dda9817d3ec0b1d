import { lowbitVitest } from "../../tools/build/vitest";

export default lowbitVitest();
