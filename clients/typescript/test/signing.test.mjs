// clients/signing-vectors.json (written from the Python implementation by
// scripts/signing-vectors): this client serializes and signs each case byte for byte.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { createRegistry, fromJson, toBinary } from "@bufbuild/protobuf";
import {
  canonicalString,
  file_ledgerd_v1_balance,
  SIGNATURE_HEADER,
  Signer,
} from "../dist/index.js";

const { vectors } = JSON.parse(
  readFileSync(new URL("../../signing-vectors.json", import.meta.url), "utf8"),
);
const registry = createRegistry(file_ledgerd_v1_balance);

test("the vectors file has cases to check", () => {
  assert.ok(vectors.length >= 5);
});

for (const vector of vectors) {
  test(`signs ${vector.method} byte for byte as Python`, () => {
    const schema = registry.getMessage(vector.request_type);
    assert.ok(schema, vector.request_type);
    const body = toBinary(schema, fromJson(schema, vector.request));
    assert.equal(Buffer.from(body).toString("hex"), vector.body_hex);
    const canonical = canonicalString(
      vector.method,
      vector.key_id,
      vector.timestamp_ms,
      vector.nonce,
      body,
    );
    assert.equal(canonical, vector.canonical);
    const headers = Object.fromEntries(
      new Signer(vector.key_id, vector.secret).headers(vector.method, body, {
        timestampMs: vector.timestamp_ms,
        nonce: vector.nonce,
      }),
    );
    assert.equal(headers[SIGNATURE_HEADER], vector.signature);
  });
}

test("each attempt gets a fresh nonce and the current time", () => {
  const signer = new Signer("app", "s3cret");
  const body = new Uint8Array([1, 2, 3]);
  const before = Date.now();
  const first = Object.fromEntries(signer.headers("/ledgerd.v1.BalanceService/GetBalance", body));
  const second = Object.fromEntries(signer.headers("/ledgerd.v1.BalanceService/GetBalance", body));
  assert.notEqual(first["x-ledgerd-nonce"], second["x-ledgerd-nonce"]);
  assert.equal(first["x-ledgerd-nonce"].length, 32);
  assert.ok(Number(first["x-ledgerd-timestamp"]) >= before);
  assert.equal(JSON.stringify(signer).includes("s3cret"), false);
});
