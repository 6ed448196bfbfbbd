// The pieces without a server: the deadline arithmetic, the backoff, error details decoding.
import assert from "node:assert/strict";
import { test } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { Metadata } from "@grpc/grpc-js";
import {
  accountLock,
  AccountLock,
  backoffMs,
  CallDeadline,
  changeRequest,
  ChangeType,
  DEFAULT_RETRY,
  LedgerdRpcError,
  lockRequest,
  Status,
  unlockRequest,
} from "../dist/index.js";
import { BadRequestSchema, ErrorInfoSchema } from "../dist/gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../dist/gen/google/rpc/status_pb.js";

test("without a deadline an attempt keeps its timeout and may always retry", () => {
  const deadline = CallDeadline.after(undefined, 100);
  assert.equal(deadline.attemptTimeoutMs(10_000, 1e9), 10_000);
  assert.equal(deadline.allowsRetry(2000, 1e9), true);
});

test("an attempt gets at most what is left of the deadline, and no retry past it", () => {
  const deadline = CallDeadline.after(3000, 100);
  assert.equal(deadline.attemptTimeoutMs(15_000, 100), 3000);
  assert.equal(deadline.attemptTimeoutMs(15_000, 2600), 500);
  assert.equal(deadline.attemptTimeoutMs(15_000, 4000), 0);
  assert.equal(deadline.allowsRetry(100, 1100), true);
  assert.equal(deadline.allowsRetry(400, 2800), false);
});

test("the backoff doubles from 100 ms up to 2 s, as the Python client's", () => {
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5].map((a) => backoffMs(DEFAULT_RETRY, a)),
    [100, 200, 400, 800, 1600, 2000],
  );
});

test("the status details trailer becomes reason, metadata and field violations", () => {
  const status = create(StatusSchema, {
    code: Status.INVALID_ARGUMENT,
    message: "amount: must be greater than zero",
    details: [
      anyPack(
        ErrorInfoSchema,
        create(ErrorInfoSchema, {
          reason: "INVALID_FIELD",
          domain: "ledgerd",
          metadata: { field_violations: "1" },
        }),
      ),
      anyPack(
        BadRequestSchema,
        create(BadRequestSchema, {
          fieldViolations: [{ field: "amount", description: "must be greater than zero" }],
        }),
      ),
    ],
  });
  const trailers = new Metadata();
  trailers.set("grpc-status-details-bin", Buffer.from(toBinary(StatusSchema, status)));
  const error = new LedgerdRpcError(Status.INVALID_ARGUMENT, status.message, trailers);
  assert.equal(error.reason, "INVALID_FIELD");
  assert.deepEqual(error.metadata, { field_violations: "1" });
  assert.deepEqual(error.fieldViolations, [
    { field: "amount", description: "must be greater than zero" },
  ]);
  assert.equal(
    error.message,
    "INVALID_ARGUMENT (INVALID_FIELD): amount: must be greater than zero",
  );
  // Details of another status (a proxy replaced the code) are not believed.
  const replaced = new LedgerdRpcError(Status.UNAVAILABLE, "upstream gone", trailers);
  assert.equal(replaced.reason, "");
  assert.deepEqual(replaced.fieldViolations, []);
});

test("changeRequest takes a type by name in any case and makes a fresh request id", () => {
  const a = changeRequest("deposit", 5, "USD", "1");
  const b = changeRequest(ChangeType.FREEZE, 5n, "USD", "1", { requestId: "mine" });
  assert.equal(a.type, ChangeType.DEPOSIT);
  assert.equal(a.userId, 5n);
  assert.match(a.requestId, /^[0-9a-f-]{36}$/);
  assert.equal(b.requestId, "mine");
  assert.throws(() => changeRequest("GIVE", 5, "USD", "1"), RangeError);
  assert.throws(() => changeRequest("DEPOSIT", 1.5, "USD", "1"), RangeError);
});

test("a lock is named short or in full, any case, as the Python client's lock_account takes it", () => {
  assert.equal(accountLock("debits"), AccountLock.DEBITS);
  assert.equal(accountLock("FULL"), AccountLock.FULL);
  assert.equal(accountLock("account_lock_debits"), AccountLock.DEBITS);
  assert.equal(accountLock(AccountLock.FULL), AccountLock.FULL);
  assert.throws(() => accountLock("sealed"), RangeError);
});

test("lockRequest and unlockRequest make a fresh request id unless one is given", () => {
  const request = lockRequest(7, "USD", "full", { memo: "why", wait: true });
  assert.equal(request.userId, 7n);
  assert.equal(request.lock, AccountLock.FULL);
  assert.deepEqual([request.memo, request.wait], ["why", true]);
  assert.match(request.requestId, /^[0-9a-f-]{36}$/);
  assert.notEqual(lockRequest(7, "USD", "full").requestId, request.requestId);
  assert.equal(unlockRequest(7n, "USD", { requestId: "u-1" }).requestId, "u-1");
  assert.match(unlockRequest(7n, "USD").requestId, /^[0-9a-f-]{36}$/);
});
