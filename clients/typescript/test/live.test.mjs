// The live suite (test/support/live-suite.mjs) on the embedded stack.
import { liveSuite } from "./support/live-suite.mjs";

liveSuite("embedded");
