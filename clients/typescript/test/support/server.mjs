// A `ledgerd serve` child process for the tests, on free ports with request signing on (a
// key file), as src/ledgerd/launch/serve_process.py starts one for the Python tests. Stack
// "embedded": SQLite, the embedded log and the memory cache in a fresh data directory;
// "production": MariaDB, Kafka and Redis of scripts/services, with a database, topics, group
// and cache prefix of its own (ledgerd.launch.serve_process.production_env); the database
// is dropped at stop.
//
// LEDGERD_PYTHON names the Python that has ledgerd installed (the Makefile passes the venv's);
// default: the repository's .venv, then python3. PYTHONPATH passes through, so a checkout's
// sources can be tested with another checkout's venv.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { LedgerdClient } from "../../dist/index.js";

const repoDir = resolve(fileURLToPath(new URL("../../../..", import.meta.url)));

export const KEYS = {
  app: { keyId: "app", secret: "s3cret-new" },
  // Signed with the key's previous secret: still accepted during a rotation.
  appPrevious: { keyId: "app", secret: "s3cret-old" },
  reader: { keyId: "reader", secret: "r3ad" },
  // LockAccount / UnlockAccount need `admin`, which `write` does not include.
  admin: { keyId: "admin", secret: "4dm1n" },
};
const KEYS_FILE = {
  app: { secrets: ["s3cret-new", "s3cret-old"], scopes: ["read", "write"] },
  reader: { secrets: ["r3ad"], scopes: ["read"] },
  admin: { secrets: ["4dm1n"], scopes: ["read", "admin"] },
};

export function python() {
  if (process.env.LEDGERD_PYTHON) return process.env.LEDGERD_PYTHON;
  const venv = join(repoDir, ".venv/bin/python");
  return existsSync(venv) ? venv : "python3";
}

export function freePort() {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolvePort(port));
    });
  });
}

export class LedgerdServer {
  constructor(dataDir, grpcPort, metricsPort, extraEnv) {
    this.dataDir = dataDir;
    this.grpcPort = grpcPort;
    this.metricsPort = metricsPort;
    this.extraEnv = extraEnv;
    this.target = `127.0.0.1:${grpcPort}`;
    this.logPath = join(dataDir, "server.log");
    this.child = undefined;
  }

  /** Start a server and wait until a signed HealthCheck answers SERVING. */
  static async start({
    stack = "embedded",
    env = {},
    clientOptions = {},
    timeoutMs = 60_000,
  } = {}) {
    const dataDir = mkdtempSync(join(tmpdir(), "ledgerd-ts-"));
    const stackEnv = stack === "production" ? productionEnv() : {};
    const server = new LedgerdServer(dataDir, await freePort(), await freePort(), {
      ...stackEnv,
      ...env,
    });
    server.launch();
    try {
      await server.waitServing(clientOptions, timeoutMs);
    } catch (error) {
      await server.stop();
      throw error;
    }
    return server;
  }

  launch() {
    const keysFile = join(this.dataDir, "keys.json");
    writeFileSync(keysFile, JSON.stringify(KEYS_FILE));
    // Settings come only from here: a LEDGERD_* variable of the caller's shell (say, from
    // `eval "$(scripts/services env)"`) must not turn this into another stack.
    const inherited = Object.fromEntries(
      Object.entries(process.env).filter(
        ([k]) => !k.startsWith("LEDGERD_") || k.startsWith("LEDGERD_TEST_"),
      ),
    );
    const log = openSync(this.logPath, "a");
    this.child = spawn(python(), ["-m", "ledgerd.cli", "serve"], {
      env: {
        ...inherited,
        LEDGERD_DATA_DIR: this.dataDir,
        LEDGERD_GRPC_ADDR: this.target,
        LEDGERD_METRICS_ADDR: `127.0.0.1:${this.metricsPort}`,
        LEDGERD_HMAC_KEYS_FILE: keysFile,
        ...this.extraEnv,
      },
      stdio: ["ignore", log, log],
    });
    this.exited = new Promise((resolveExit) =>
      this.child.once("exit", (code, signal) => resolveExit(code ?? signal)),
    );
  }

  client(options = {}) {
    return new LedgerdClient(this.target, { ...KEYS.app, ...options });
  }

  async waitServing(clientOptions, timeoutMs) {
    const client = this.client({ timeoutMs: 1000, retry: { attempts: 1 }, ...clientOptions });
    let exitCode;
    this.exited.then((code) => (exitCode = code));
    const deadline = performance.now() + timeoutMs;
    let last;
    try {
      for (;;) {
        // An early exit fails at once, with the server's own words.
        if (exitCode !== undefined)
          throw new Error(`ledgerd exited (${exitCode}):\n${this.logTail()}`);
        try {
          if ((await client.health()).status === 1) return;
        } catch (error) {
          last = error;
        }
        if (performance.now() > deadline) {
          throw new Error(
            `ledgerd not serving on ${this.target} (${last ?? ""}):\n${this.logTail()}`,
          );
        }
        await sleep(50);
      }
    } finally {
      client.close();
    }
  }

  logTail(lines = 40) {
    try {
      return readFileSync(this.logPath, "utf8").split("\n").slice(-lines).join("\n");
    } catch {
      return "";
    }
  }

  /** SIGTERM, a graceful exit within 20 s (else SIGKILL), then the data directory goes. */
  async stop() {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill("SIGTERM");
      const timer = setTimeout(() => this.child.kill("SIGKILL"), 20_000);
      await this.exited;
      clearTimeout(timer);
    }
    rmSync(this.dataDir, { recursive: true, force: true });
    if (this.extraEnv.LEDGERD_STORE_URL) dropDatabase(this.extraEnv.LEDGERD_STORE_URL);
  }
}

/** The settings of a server on the real services, isolated from every other one. */
function productionEnv() {
  const code =
    "import json; from ledgerd.launch.serve_process import production_env; print(json.dumps(production_env()))";
  return JSON.parse(execFileSync(python(), ["-c", code], { encoding: "utf8" }));
}

function dropDatabase(url) {
  const code = [
    "import sys, MySQLdb",
    "from ledgerd.store.mysql import MysqlUrl",
    "u = MysqlUrl.parse(sys.argv[1])",
    "c = MySQLdb.connect(host=u.host, port=u.port, user=u.user, password=u.password)",
    "c.cursor().execute(f'DROP DATABASE IF EXISTS `{u.database}`')",
    "c.close()",
  ].join("\n");
  execFileSync(python(), ["-c", code, url], { stdio: ["ignore", "ignore", "inherit"] });
}

let nextUser = BigInt(Date.now() % 1_000_000) * 1000n + BigInt(process.pid % 1000);
/** A user id no other test of this run uses. */
export function newUser() {
  nextUser += 1n;
  return nextUser;
}
