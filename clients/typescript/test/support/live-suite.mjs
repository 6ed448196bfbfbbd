// The client against a live `ledgerd serve` (signing on) on one stack: live.test.mjs runs it
// on the embedded stack, live-production.test.mjs on MariaDB, Kafka and Redis.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import {
  BalanceService,
  ChangeStatus,
  ChangeType,
  LedgerdClient,
  LedgerdRpcError,
  RejectReason,
  Status,
} from "../../dist/index.js";
import { startProxy } from "./proxy.mjs";
import { KEYS, LedgerdServer, newUser } from "./server.mjs";

let server;
let client;

/** The error a promise rejects with, asserting it is a LedgerdRpcError. */
async function rpcError(promise) {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof LedgerdRpcError, `not a LedgerdRpcError: ${error}`);
    return error;
  }
  assert.fail("the call succeeded");
}

/** The live tests, against a server on `stack` ("embedded" or "production") they start. */
export function liveSuite(stack) {
  describe(`a live ledgerd on the ${stack} stack`, { concurrency: true }, () => {
    before(async () => {
      server = await LedgerdServer.start({ stack });
      client = server.client();
    });

    after(async () => {
      client?.close();
      await server?.stop();
    });

    test("a deposit with wait is APPLIED, then reads back from GetBalance, ListJournal and GetChange", async () => {
      const user = newUser();
      const requestId = `ts-${randomUUID()}`;
      const result = await client.change("DEPOSIT", user, "USD", "10.5", {
        requestId,
        wait: true,
        memo: "café",
      });
      assert.equal(result.status, ChangeStatus.APPLIED);
      assert.equal(result.duplicate, false);
      assert.equal(result.balance.available, "10.5");
      assert.equal(result.balance.version, 1n);
      const [balance] = await client.getBalance(user, "USD");
      assert.equal(balance.available, "10.5");
      assert.equal(balance.frozen, "0");
      assert.equal(balance.userId, user);
      const entries = await client.journal(user, "USD");
      assert.deepEqual(
        entries.map((e) => [e.requestId, e.type, e.amount, e.memo]),
        [[requestId, ChangeType.DEPOSIT, "10.5", "café"]],
      );
      const change = await client.getChange(requestId);
      assert.equal(change.status, ChangeStatus.APPLIED);
      const again = await client.change(ChangeType.DEPOSIT, user, "USD", "10.5", {
        requestId,
        wait: true,
        memo: "café",
      });
      assert.equal(again.duplicate, true);
      assert.equal((await client.getBalance(user, "USD"))[0].available, "10.5");
    });

    test("a withdrawal beyond the balance is REJECTED with its reason, not an error", async () => {
      const user = newUser();
      const result = await client.change("withdraw", user, "USD", "1", { wait: true });
      assert.equal(result.status, ChangeStatus.REJECTED);
      assert.equal(result.rejectReason, RejectReason.INSUFFICIENT_AVAILABLE);
    });

    test("a reused request id with other fields is a typed ALREADY_EXISTS error with its reason", async () => {
      const user = newUser();
      const requestId = `ts-${randomUUID()}`;
      await client.change("DEPOSIT", user, "USD", "1", { requestId });
      const error = await rpcError(client.change("DEPOSIT", user, "USD", "2", { requestId }));
      assert.equal(error.code, Status.ALREADY_EXISTS);
      assert.equal(error.reason, "REQUEST_CONFLICT");
      assert.equal(error.domain, "ledgerd");
      assert.equal(error.metadata.request_id, requestId);
      assert.equal(error.retriable, false);
      assert.match(error.message, /^ALREADY_EXISTS \(REQUEST_CONFLICT\): /);
    });

    test("a bad field is INVALID_ARGUMENT with one field violation per bad field", async () => {
      const error = await rpcError(client.change("DEPOSIT", newUser(), "USD", "-1"));
      assert.equal(error.code, Status.INVALID_ARGUMENT);
      assert.equal(error.reason, "INVALID_FIELD");
      assert.deepEqual(
        error.fieldViolations.map((v) => v.field),
        ["amount"],
      );
      const batch = await rpcError(
        client.changeMany([
          {
            userId: newUser(),
            currency: "USD",
            type: ChangeType.DEPOSIT,
            amount: "1.0000000000000000001",
          },
          { userId: newUser(), currency: "usd", type: ChangeType.DEPOSIT, amount: "1" },
        ]),
      );
      assert.deepEqual(
        batch.fieldViolations.map((v) => v.field),
        ["changes[0].amount", "changes[1].currency"],
      );
      assert.ok(batch.fieldViolations.every((v) => v.description.length > 0));
    });

    test("signing: no key is UNAUTHENTICATED, a rotated-out secret works, a read key cannot write", async () => {
      const unsigned = new LedgerdClient(server.target);
      const previous = new LedgerdClient(server.target, KEYS.appPrevious);
      const reader = new LedgerdClient(server.target, KEYS.reader);
      try {
        const refused = await rpcError(unsigned.getBalance(newUser(), "USD"));
        assert.equal(refused.code, Status.UNAUTHENTICATED);
        assert.equal(
          (await previous.change("DEPOSIT", newUser(), "EUR", "1", { wait: true })).status,
          ChangeStatus.APPLIED,
        );
        assert.equal((await reader.getBalance(newUser(), "USD"))[0].version, 0n);
        const denied = await rpcError(reader.change("DEPOSIT", newUser(), "USD", "1"));
        assert.equal(denied.code, Status.PERMISSION_DENIED);
        assert.equal(denied.reason, "SCOPE_MISSING");
      } finally {
        unsigned.close();
        previous.close();
        reader.close();
      }
    });

    test("a transfer moves funds between two users and reads back by GetTransfer", async () => {
      const [from, to] = [newUser(), newUser()];
      await client.change("DEPOSIT", from, "BTC", "3", { wait: true });
      const requestId = `ts-${randomUUID()}`;
      const transfer = await client.transfer(from, to, "BTC", "1.25", {
        requestId,
        wait: true,
        memo: "rent",
      });
      assert.equal(transfer.status, ChangeStatus.APPLIED);
      assert.equal(transfer.fromBalance.available, "1.75");
      assert.equal(transfer.toBalance.available, "1.25");
      const read = await client.getTransfer(requestId);
      assert.equal(read.status, ChangeStatus.APPLIED);
      assert.equal(read.amount, "1.25");
      const [entry] = await client.journal(to, "BTC");
      assert.equal(entry.type, ChangeType.TRANSFER_IN);
      assert.equal(entry.transferId, requestId);
      assert.equal(entry.counterpartyUserId, from);
      const atomic = await client.changeMany(
        [
          { userId: from, currency: "BTC", type: ChangeType.FREEZE, amount: "1" },
          { userId: from, currency: "BTC", type: ChangeType.SPEND_FROZEN, amount: "1" },
        ],
        { wait: true, atomic: true },
      );
      assert.deepEqual(
        atomic.map((r) => r.status),
        [ChangeStatus.APPLIED, ChangeStatus.APPLIED],
      );
    });

    test("TailEvents is an async iterator of the changes applied after it is positioned", async () => {
      const user = newUser();
      const stream = await client.tailEvents();
      const requestIds = [`ts-${randomUUID()}`, `ts-${randomUUID()}`];
      for (const requestId of requestIds)
        await client.change("DEPOSIT", user, "JPY", "5", { requestId, wait: true });
      const seen = [];
      for await (const event of stream) {
        if (event.entry.userId !== user) continue;
        seen.push([event.entry.requestId, event.entry.version]);
        if (seen.length === requestIds.length) break; // leaving the loop ends the call
      }
      assert.deepEqual(seen, [
        [requestIds[0], 1n],
        [requestIds[1], 2n],
      ]);
      const limited = await client.tailEvents({ fromBeginning: true, limit: 2 });
      let count = 0;
      for await (const event of limited) count += event.entry ? 1 : 0;
      assert.equal(count, 2);
    });

    test("a stream cancelled before iteration ends quietly; one past its timeout throws DEADLINE_EXCEEDED", async () => {
      const cancelled = await client.tailEvents();
      cancelled.cancel();
      const events = [];
      for await (const event of cancelled) events.push(event);
      assert.deepEqual(events, []);
      // Long enough to be positioned on a loaded machine; the iteration then hits the timeout.
      const bounded = await client.tailEvents({ timeoutMs: 1500 });
      const error = await rpcError(
        (async () => {
          for await (const _event of bounded); // other tests' events come and go until the timeout
        })(),
      );
      assert.equal(error.code, Status.DEADLINE_EXCEEDED);
    });

    test("call() reaches an RPC by its generated descriptor; the proto has no RPC kind the client lacks", async () => {
      const health = await client.call(BalanceService.method.healthCheck, {});
      assert.equal(health.status, 1);
      assert.equal(health.components.store, "ok");
      const kinds = new Set(BalanceService.methods.map((m) => m.methodKind));
      // The client serves unary and server-streaming RPCs; a new kind would need code here.
      assert.deepEqual(
        [...kinds].filter((k) => k !== "unary" && k !== "server_streaming"),
        [],
      );
    });

    test("a lost answer is retried with the same request: applied once, answered as a duplicate", async () => {
      const proxy = await startProxy(server.target, (attempt) =>
        attempt === 0 ? "forward-then-unavailable" : "forward",
      );
      const through = new LedgerdClient(proxy.target, {
        ...KEYS.app,
        retry: { firstBackoffMs: 20 },
      });
      try {
        const user = newUser();
        const result = await through.change("DEPOSIT", user, "USD", "7", { wait: true });
        assert.equal(result.status, ChangeStatus.APPLIED);
        assert.equal(result.duplicate, true);
        assert.equal(proxy.attempts.length, 2);
        const [first, second] = proxy.attempts;
        assert.ok(first.body.equals(second.body), "the same bytes, hence the same request id");
        assert.notEqual(first.metadata["x-ledgerd-nonce"], second.metadata["x-ledgerd-nonce"]);
        assert.equal((await client.journal(user, "USD")).length, 1);
      } finally {
        through.close();
        proxy.close();
      }
    });

    test("retries stop at the call's deadline, and a non-retriable error is not retried", async () => {
      const proxy = await startProxy(server.target, (_attempt, call) =>
        call.path.endsWith("/GetBalance") ? "unavailable" : "forward",
      );
      const through = new LedgerdClient(proxy.target, {
        ...KEYS.app,
        deadlineMs: 1200,
        retry: { attempts: 100, firstBackoffMs: 50, maxBackoffMs: 200 },
      });
      try {
        const started = performance.now();
        const error = await rpcError(through.getBalance(newUser(), "USD"));
        const elapsedMs = performance.now() - started;
        // The last attempt gets only what is left of the deadline: it may run out first.
        assert.ok(
          [Status.UNAVAILABLE, Status.DEADLINE_EXCEEDED].includes(error.code),
          error.message,
        );
        assert.equal(error.retriable, true);
        // Backoffs of 50, 100, 200, 200... ms: several attempts fit, far from the 100 allowed.
        assert.ok(
          proxy.attempts.length >= 3 && proxy.attempts.length < 20,
          `${proxy.attempts.length} attempts`,
        );
        // The deadline ends the call; the slack is for a loaded machine (each attempt is quick).
        assert.ok(elapsedMs < 1200 + 600, `took ${elapsedMs} ms`);
        const beforeShort = proxy.attempts.length;
        const shortStarted = performance.now();
        const short = await rpcError(
          through.call(
            BalanceService.method.getBalance,
            { userId: newUser(), currency: "USD" },
            { deadlineMs: 200 },
          ),
        );
        assert.ok(
          [Status.UNAVAILABLE, Status.DEADLINE_EXCEEDED].includes(short.code),
          short.message,
        );
        assert.ok(
          performance.now() - shortStarted < 200 + 600,
          "a call's own deadline wins over the client's",
        );
        // Backoffs of 50 and 100 ms: at most three attempts start within 200 ms.
        assert.ok(
          proxy.attempts.length - beforeShort <= 3,
          `${proxy.attempts.length - beforeShort} attempts`,
        );
        const before = proxy.attempts.length;
        const invalid = await rpcError(through.change("DEPOSIT", newUser(), "USD", "0"));
        assert.equal(invalid.code, Status.INVALID_ARGUMENT);
        assert.equal(proxy.attempts.length, before + 1);
      } finally {
        through.close();
        proxy.close();
      }
    });
  });
}
