// `npm pack` makes a tarball that installs into a fresh project and works from there: the ESM
// module imports, signs, and its types check under tsc --strict. (The tests run after
// `npm run build`; packing here skips the prepack build so that it cannot race the other
// test files reading dist/.)
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const packageDir = fileURLToPath(new URL("..", import.meta.url));
const tsc = join(packageDir, "node_modules/typescript/bin/tsc");

const CONSUMER_TS = `
import { BalanceService, ChangeStatus, LedgerdClient, LedgerdRpcError, Status } from "@ledgerd/client";
import type { AccountLock, Balance, ChangeResult, Statement } from "@ledgerd/client";

export async function deposit(client: LedgerdClient): Promise<string> {
  const result: ChangeResult = await client.change("DEPOSIT", 42n, "USD", "10.5", { wait: true });
  const balances: Balance[] = await client.getBalance(42n, "USD");
  const health = await client.call(BalanceService.method.healthCheck, {});
  try {
    await client.transfer(1, 2, "USD", "1");
  } catch (error) {
    if (error instanceof LedgerdRpcError && error.code === Status.INVALID_ARGUMENT) {
      return error.fieldViolations.map((v) => v.field).join(",");
    }
  }
  return result.status === ChangeStatus.APPLIED ? balances[0].available : String(health.status);
}

export async function review(client: LedgerdClient): Promise<AccountLock> {
  const asOf = await client.getBalance(42n, "USD", { asOfUnixMs: 1, asOfVersion: undefined });
  const statement: Statement = await client.statement(42n, "USD", 0, 1n, { pageSize: 10 });
  for await (const page of client.statementPages(42n, "USD", 0, 1)) page.entries.at(0)?.amount;
  const locked = await client.lockAccount(42n, "USD", "debits", { memo: statement.closing.available });
  await client.unlockAccount(42n, "USD", { wait: true });
  return locked.balance?.lock ?? asOf[0].lock;
}
`;

const CONSUMER_MJS = `
import { LedgerdClient, Signer, BalanceService } from "@ledgerd/client";
const client = new LedgerdClient("127.0.0.1:1", { keyId: "app", secret: "s" });
client.close();
const headers = new Signer("app", "s").headers("/ledgerd.v1.BalanceService/HealthCheck", new Uint8Array(), { timestampMs: 1, nonce: "n".repeat(16) });
console.log(JSON.stringify({ rpcs: BalanceService.methods.map((m) => m.name), signature: headers[3][1] }));
`;

test("the npm pack tarball installs into a fresh project, imports and type-checks", () => {
  const workDir = mkdtempSync(join(tmpdir(), "ledgerd-ts-pack-"));
  try {
    const [packed] = JSON.parse(
      execFileSync("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", workDir], {
        cwd: packageDir,
        encoding: "utf8",
      }),
    );
    const files = packed.files.map((f) => f.path);
    assert.ok(files.includes("README.md"));
    assert.ok(files.includes("dist/index.js") && files.includes("dist/index.d.ts"));
    assert.ok(files.includes("dist/gen/ledgerd/v1/balance_pb.js"));
    assert.deepEqual(
      files.filter((f) => f.startsWith("src/") || f.startsWith("test/")),
      [],
    );

    const project = join(workDir, "consumer");
    execFileSync("mkdir", [project]);
    writeFileSync(
      join(project, "package.json"),
      JSON.stringify({ name: "consumer", private: true, type: "module" }),
    );
    execFileSync(
      "npm",
      [
        "install",
        "--no-audit",
        "--no-fund",
        "--prefer-offline",
        "--ignore-scripts",
        join(workDir, packed.filename),
      ],
      { cwd: project, stdio: "ignore" },
    );
    writeFileSync(join(project, "consumer.mjs"), CONSUMER_MJS);
    const out = JSON.parse(
      execFileSync(process.execPath, ["consumer.mjs"], { cwd: project, encoding: "utf8" }),
    );
    assert.ok(out.rpcs.includes("ChangeBalance") && out.rpcs.includes("TailEvents"));
    assert.match(out.signature, /^[0-9a-f]{64}$/);

    writeFileSync(join(project, "consumer.ts"), CONSUMER_TS);
    execFileSync(
      process.execPath,
      [
        tsc,
        "--noEmit",
        "--strict",
        "--module",
        "nodenext",
        "--moduleResolution",
        "nodenext",
        "--target",
        "es2022",
        "consumer.ts",
      ],
      { cwd: project, encoding: "utf8" },
    );
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
});
