// The client against a live `ledgerd serve` (signing on) on one stack: live.test.mjs runs it
// on the embedded stack, live-production.test.mjs on MariaDB, Kafka and Redis.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  AccountLock,
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

/** A decimal string as an integer of 10^-18 units, for exact sums. */
function units(decimal) {
  const [whole, fraction = ""] = decimal.split(".");
  return BigInt(whole) * 10n ** 18n + BigInt(fraction.padEnd(18, "0"));
}

/** Waits until this machine's clock (the server's) is past `unixMs`, so that a change
 * applied from now on is stamped later than one stamped `unixMs`. */
async function clockPast(unixMs) {
  const deadline = performance.now() + 5000;
  while (BigInt(Date.now()) <= unixMs) {
    assert.ok(performance.now() < deadline, "the clock did not move");
    await sleep(1);
  }
}

/** A deposit with wait, APPLIED, and the moment its journal entry was applied. */
async function depositApplied(user, currency, amount) {
  const result = await client.change("DEPOSIT", user, currency, amount, { wait: true });
  assert.equal(result.status, ChangeStatus.APPLIED);
  const version = result.balance.version;
  const [entry] = await client.journal(user, currency, version - 1n, 1);
  assert.equal(entry.version, version);
  return entry.appliedAtUnixMs;
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

    test("an as-of read between two deposits sees the first only, by moment and by version", async () => {
      const user = newUser();
      const first = await depositApplied(user, "USD", "10");
      await clockPast(first);
      const second = await depositApplied(user, "USD", "2.5");
      assert.ok(second > first);
      const atFirst = await client.balanceAsOf(user, "USD", { asOfUnixMs: first });
      assert.deepEqual(
        atFirst.balances.map((b) => [b.available, b.version]),
        [["10", 1n]],
      );
      assert.equal(atFirst.asOf.asOfUnixMs, first);
      assert.deepEqual(atFirst.asOf.appliedAtUnixMs, [first]);
      const [beforeAny] = await client.getBalance(user, "USD", { asOfUnixMs: first - 1n });
      assert.deepEqual([beforeAny.available, beforeAny.version], ["0", 0n]);
      const [byVersion] = await client.getBalance(user, "USD", { asOfVersion: 1 });
      assert.deepEqual([byVersion.available, byVersion.version], ["10", 1n]);
      const [now] = await client.getBalance(user, "USD", { asOfUnixMs: second });
      assert.deepEqual([now.available, now.version], ["12.5", 2n]);
      const live = await client.balanceAsOf(user, "USD");
      assert.equal(live.asOf, undefined, "a live read has no as_of");
      assert.equal(live.balances[0].available, "12.5");
    });

    test("a statement over several pages: opening + its entries = closing", async () => {
      const user = newUser();
      const opened = await depositApplied(user, "EUR", "100");
      await clockPast(opened);
      const from = await depositApplied(user, "EUR", "0.5");
      for (const amount of ["20", "3.25"])
        await client.change("DEPOSIT", user, "EUR", amount, { wait: true });
      const spent = await client.change("WITHDRAW", user, "EUR", "7.125", { wait: true });
      assert.equal(spent.status, ChangeStatus.APPLIED);
      const [last] = await client.journal(user, "EUR", spent.balance.version - 1n, 1);
      const to = last.appliedAtUnixMs + 1n;
      const first = await client.statementPage(user, "EUR", from, to, { pageSize: 2 });
      assert.equal(first.entries.length, 2);
      assert.notEqual(first.nextPageToken, "");
      let pages = 0;
      for await (const page of client.statementPages(user, "EUR", from, to, { pageSize: 2 })) {
        pages += 1;
        assert.equal(page.closing.version, first.closing.version, "every page, one closing");
      }
      assert.equal(pages, 2);
      const statement = await client.statement(user, "EUR", from, to, { pageSize: 2 });
      assert.deepEqual([statement.opening.available, statement.opening.version], ["100", 1n]);
      assert.equal(statement.openingAppliedAtUnixMs, opened);
      assert.deepEqual(
        statement.entries.map((e) => e.version),
        [2n, 3n, 4n, 5n],
      );
      const sign = { [ChangeType.DEPOSIT]: 1n, [ChangeType.WITHDRAW]: -1n };
      const sum = statement.entries.reduce(
        (total, e) => total + sign[e.type] * units(e.amount),
        units(statement.opening.available),
      );
      assert.equal(sum, units(statement.closing.available));
      assert.deepEqual([statement.closing.available, statement.closing.version], ["116.625", 5n]);
    });

    test("a lock makes a withdrawal REJECTED with ACCOUNT_LOCKED until the unlock", async () => {
      const admin = new LedgerdClient(server.target, KEYS.admin);
      try {
        const user = newUser();
        await client.change("DEPOSIT", user, "USD", "5", { wait: true });
        const requestId = `ts-${randomUUID()}`;
        const locked = await admin.lockAccount(user, "USD", "debits", {
          requestId,
          wait: true,
          memo: "fraud review",
        });
        assert.equal(locked.status, ChangeStatus.APPLIED);
        assert.equal(locked.balance.lock, AccountLock.DEBITS);
        const again = await admin.lockAccount(user, "USD", AccountLock.DEBITS, {
          requestId,
          wait: true,
          memo: "fraud review",
        });
        assert.equal(again.duplicate, true, "the same request id is the same lock");
        const refused = await client.change("WITHDRAW", user, "USD", "1", { wait: true });
        assert.equal(refused.status, ChangeStatus.REJECTED);
        assert.equal(refused.rejectReason, RejectReason.ACCOUNT_LOCKED);
        const credit = await client.change("DEPOSIT", user, "USD", "1", { wait: true });
        assert.equal(credit.status, ChangeStatus.APPLIED, "a debit lock still takes credits");
        const unlocked = await admin.unlockAccount(user, "USD", { wait: true });
        assert.equal(unlocked.status, ChangeStatus.APPLIED);
        assert.equal(unlocked.balance.lock, AccountLock.NONE);
        const paid = await client.change("WITHDRAW", user, "USD", "1", { wait: true });
        assert.equal(paid.status, ChangeStatus.APPLIED);
        assert.equal(paid.balance.available, "5");
        const entries = await client.journal(user, "USD");
        const lockEntry = entries.find((e) => e.requestId === requestId);
        assert.equal(lockEntry.type, ChangeType.LOCK_DEBITS);
        assert.equal(lockEntry.actor, KEYS.admin.keyId);
      } finally {
        admin.close();
      }
    });

    test("a write key gets PERMISSION_DENIED (SCOPE_MISSING) on LockAccount, an admin key does not", async () => {
      const admin = new LedgerdClient(server.target, KEYS.admin);
      try {
        const user = newUser();
        const denied = await rpcError(client.lockAccount(user, "USD", "full", { wait: true }));
        assert.equal(denied.code, Status.PERMISSION_DENIED);
        assert.equal(denied.reason, "SCOPE_MISSING");
        const deniedUnlock = await rpcError(client.unlockAccount(user, "USD"));
        assert.equal(deniedUnlock.code, Status.PERMISSION_DENIED);
        const locked = await admin.lockAccount(user, "USD", "full", { wait: true });
        assert.equal(locked.status, ChangeStatus.APPLIED);
        assert.equal(locked.balance.lock, AccountLock.FULL);
        const [balance] = await admin.getBalance(user, "USD");
        assert.equal(balance.version, 1n);
      } finally {
        admin.close();
      }
    });

    test("a lost LockAccount answer is retried with the same request: one lock, a duplicate", async () => {
      const proxy = await startProxy(server.target, (attempt) =>
        attempt === 0 ? "forward-then-unavailable" : "forward",
      );
      const through = new LedgerdClient(proxy.target, {
        ...KEYS.admin,
        retry: { firstBackoffMs: 20 },
      });
      try {
        const user = newUser();
        const result = await through.lockAccount(user, "USD", "debits", { wait: true });
        assert.equal(result.status, ChangeStatus.APPLIED);
        assert.equal(result.duplicate, true);
        assert.equal(proxy.attempts.length, 2);
        assert.ok(proxy.attempts[0].body.equals(proxy.attempts[1].body));
        assert.equal((await client.journal(user, "USD")).length, 1);
      } finally {
        through.close();
        proxy.close();
      }
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
        // The first call's last attempt may reach the proxy after the call gave up (its
        // deadline ran out on the way), so later counts take only their own call's attempts.
        const firstBody = proxy.attempts[0].body;
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
        const shortAttempts = proxy.attempts
          .slice(beforeShort)
          .filter((attempt) => !attempt.body.equals(firstBody)).length;
        assert.ok(shortAttempts <= 3, `${shortAttempts} attempts`);
        const before = proxy.attempts.length;
        const invalid = await rpcError(through.change("DEPOSIT", newUser(), "USD", "0"));
        assert.equal(invalid.code, Status.INVALID_ARGUMENT);
        const changeAttempts = proxy.attempts
          .slice(before)
          .filter((attempt) => attempt.path.endsWith("/ChangeBalance")).length;
        assert.equal(changeAttempts, 1);
      } finally {
        through.close();
        proxy.close();
      }
    });
  });
}
