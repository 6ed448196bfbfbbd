// TLS: a live ledgerd with a certificate (made now by openssl) answers a client that trusts
// it; a plaintext client gets UNAVAILABLE.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ChangeStatus, LedgerdClient, LedgerdRpcError, Status } from "../dist/index.js";
import { KEYS, LedgerdServer, newUser } from "./support/server.mjs";

let certDir;
let server;

before(async () => {
  certDir = mkdtempSync(join(tmpdir(), "ledgerd-ts-tls-"));
  const [cert, key] = [join(certDir, "cert.pem"), join(certDir, "key.pem")];
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "1",
      "-keyout",
      key,
      "-out",
      cert,
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
    ],
    { stdio: "ignore" },
  );
  server = await LedgerdServer.start({
    env: { LEDGERD_TLS_CERT_FILE: cert, LEDGERD_TLS_KEY_FILE: key },
    clientOptions: { tlsRootCert: readFileSync(cert) },
  });
});

after(async () => {
  await server?.stop();
  if (certDir) rmSync(certDir, { recursive: true, force: true });
});

test("over TLS a trusting client deposits and reads; a plaintext client is refused", async () => {
  const secure = new LedgerdClient(server.target, {
    ...KEYS.app,
    tlsRootCert: readFileSync(join(certDir, "cert.pem")),
  });
  const plain = new LedgerdClient(server.target, {
    ...KEYS.app,
    timeoutMs: 2000,
    retry: { attempts: 1 },
  });
  try {
    const user = newUser();
    assert.equal(
      (await secure.change("DEPOSIT", user, "USD", "2", { wait: true })).status,
      ChangeStatus.APPLIED,
    );
    assert.equal((await secure.getBalance(user, "USD"))[0].available, "2");
    await assert.rejects(plain.getBalance(user, "USD"), (error) => {
      assert.ok(error instanceof LedgerdRpcError);
      assert.equal(error.code, Status.UNAVAILABLE);
      return true;
    });
  } finally {
    secure.close();
    plain.close();
  }
});
