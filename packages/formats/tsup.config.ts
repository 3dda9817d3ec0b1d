import { lowbitTsup } from "../../tools/build/tsup";

export default lowbitTsup();
