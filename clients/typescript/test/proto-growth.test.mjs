// The build follows the proto: an RPC (and its messages) added to proto/ is generated at the
// next build and callable, typed, through client.call, with no change to the client's code.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const packageDir = fileURLToPath(new URL("..", import.meta.url));

const PROBE_TS = `
import { LedgerdClient } from "./client.js";
import { BalanceService, type ProbeGrowthResponse } from "./gen/ledgerd/v1/balance_pb.js";

export async function probe(client: LedgerdClient): Promise<string> {
  const answer: ProbeGrowthResponse = await client.call(BalanceService.method.probeGrowth, { text: "hi", count: 2 });
  return answer.text.repeat(answer.count);
}
`;

test("an RPC added to the proto is generated and type-checks through client.call", () => {
  // Inside the package, so that the copy resolves node_modules as the real sources do.
  const workDir = mkdtempSync(join(packageDir, ".proto-growth-"));
  try {
    cpSync(join(packageDir, "../../proto"), join(workDir, "proto"), { recursive: true });
    const protoPath = join(workDir, "proto/ledgerd/v1/balance.proto");
    const proto = readFileSync(protoPath, "utf8");
    assert.ok(proto.includes("service BalanceService {"));
    writeFileSync(
      protoPath,
      proto.replace(
        "service BalanceService {",
        "service BalanceService {\n  rpc ProbeGrowth(ProbeGrowthRequest) returns (ProbeGrowthResponse);",
      ) +
        "\nmessage ProbeGrowthRequest {\n  string text = 1;\n  uint32 count = 2;\n}\nmessage ProbeGrowthResponse {\n  string text = 1;\n  uint32 count = 2;\n}\n",
    );
    cpSync(join(packageDir, "src"), join(workDir, "src"), {
      recursive: true,
      filter: (source) => !source.includes(`${join("src", "gen")}`),
    });
    execFileSync(process.execPath, [join(packageDir, "scripts/generate.mjs")], {
      env: {
        ...process.env,
        LEDGERD_PROTO_DIR: join(workDir, "proto"),
        LEDGERD_GEN_DIR: join(workDir, "src/gen"),
      },
      stdio: ["ignore", "ignore", "inherit"],
    });
    writeFileSync(join(workDir, "src/probe.ts"), PROBE_TS);
    writeFileSync(
      join(workDir, "tsconfig.json"),
      JSON.stringify({
        extends: "../tsconfig.json",
        compilerOptions: { rootDir: "src", noEmit: true },
        include: ["src"],
      }),
    );
    execFileSync(
      process.execPath,
      [join(packageDir, "node_modules/typescript/bin/tsc"), "-p", join(workDir, "tsconfig.json")],
      {
        encoding: "utf8",
      },
    );
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
});
