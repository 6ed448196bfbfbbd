// The live suite (test/support/live-suite.mjs) on the production stack: MariaDB, Kafka and
// Redis of scripts/services (`make test-typescript` starts them).
import { liveSuite } from "./support/live-suite.mjs";

liveSuite("production");
