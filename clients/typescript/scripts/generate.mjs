// Generates src/gen/ (TypeScript, then compiled with the rest by tsc) from the shipped proto,
// proto/ledgerd/v1/balance.proto, and the google.rpc status protos the server's error details
// use. The compiler is grpcio-tools' protoc (a Python wheel, no binary download); the plugin
// is @bufbuild/protoc-gen-es from the lock file. Generated at every build, never committed:
// an RPC added to the proto is in the next build, and nothing can drift from the proto.
//
// LEDGERD_PYTHON names the Python with grpcio-tools and googleapis-common-protos installed
// (the Makefile passes the project's venv); default: ../../.venv/bin/python, then python3.
// Every .proto under proto/ is compiled, so a file the API grows into is generated too.
// LEDGERD_PROTO_DIR and LEDGERD_GEN_DIR point elsewhere (the test of a grown proto uses them).
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const repoDir = resolve(packageDir, "../..");
const protoDir = resolve(process.env.LEDGERD_PROTO_DIR ?? join(repoDir, "proto"));
const outDir = resolve(process.env.LEDGERD_GEN_DIR ?? join(packageDir, "src/gen"));

function python() {
  if (process.env.LEDGERD_PYTHON) return process.env.LEDGERD_PYTHON;
  const venv = join(repoDir, ".venv/bin/python");
  return existsSync(venv) ? venv : "python3";
}

/** Every .proto under `dir`, relative to it, sorted (the same command on every machine). */
function protoFiles(dir) {
  return readdirSync(dir, { recursive: true })
    .filter((name) => name.endsWith(".proto"))
    .map((name) => relative(dir, join(dir, name)))
    .sort();
}

const py = python();
// Where googleapis-common-protos keeps google/rpc/*.proto: two levels above its module.
let googleapisDir;
try {
  googleapisDir = execFileSync(
    py,
    [
      "-c",
      "import grpc_tools, os, google.rpc.status_pb2 as m; print(os.path.dirname(os.path.dirname(os.path.dirname(m.__file__))))",
    ],
    { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
  ).trim();
} catch (error) {
  console.error(
    `${py} lacks grpcio-tools or googleapis-common-protos (${String(error.stderr).trim().split("\n").pop()}); ` +
      "set LEDGERD_PYTHON to the project's venv Python (make test-typescript does)",
  );
  process.exit(1);
}

rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });
const plugin = join(packageDir, "node_modules/.bin/protoc-gen-es");
execFileSync(
  py,
  [
    "-m",
    "grpc_tools.protoc",
    `--plugin=protoc-gen-es=${plugin}`,
    `--es_out=${outDir}`,
    // .js import specifiers in the .ts output, so that tsc's ESM output runs in Node as is.
    "--es_opt=target=ts,import_extension=js",
    `-I${protoDir}`,
    `-I${googleapisDir}`,
    ...protoFiles(protoDir),
    "google/rpc/status.proto",
    "google/rpc/error_details.proto",
  ],
  { stdio: "inherit" },
);
