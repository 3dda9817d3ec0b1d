import { lowbitVitest } from "../../tools/build/vitest";

// one browser, one built site: the page visits and the playground runs take a few minutes at most
export default lowbitVitest({ testTimeout: 240_000 });
