/**
 * The ledgerd client for Node: signing, a deadline for the whole call, safe retries, typed
 * errors; the same behaviour as the Python client (src/ledgerd/client.py).
 *
 * A request is serialized once; those exact bytes are signed and sent (grpc-js passes them
 * through untouched). A unary call that fails with UNAVAILABLE, DEADLINE_EXCEEDED or
 * RESOURCE_EXHAUSTED is retried, re-signed (fresh nonce and timestamp) with the same bytes,
 * hence the same request_id: the server answers a retry of an accepted change with
 * `duplicate = true` and never applies it twice. `timeoutMs` bounds each attempt;
 * `deadlineMs`, when given, bounds the whole call (every attempt and the waits between them).
 * TailEvents is never retried (a stream cannot resume where it broke without duplicates).
 */
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import {
  create,
  fromBinary,
  toBinary,
  type DescMessage,
  type DescMethodServerStreaming,
  type DescMethodUnary,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import {
  Client,
  credentials as grpcCredentials,
  Metadata,
  status as Status,
  type ChannelCredentials,
  type ChannelOptions,
  type ClientReadableStream,
  type ServiceError,
} from "@grpc/grpc-js";
import { isServiceError, LedgerdRpcError, RETRIABLE_CODES } from "./errors.js";
import { backoffMs, CallDeadline, DEFAULT_RETRY, type RetryPolicy } from "./retry.js";
import { Signer } from "./signing.js";
import {
  AccountLock,
  BalanceService,
  ChangeType,
  type Balance,
  type BalanceEvent,
  type ChangeBalanceRequest,
  ChangeBalanceRequestSchema,
  type ChangeResult,
  type GetBalanceResponse,
  type GetStatementResponse,
  type HealthCheckResponse,
  type JournalEntry,
  LockAccountRequestSchema,
  type LockAccountRequest,
  type TailEventsResponse,
  type Transfer,
  TransferRequestSchema,
  type TransferRequest,
  UnlockAccountRequestSchema,
  type UnlockAccountRequest,
} from "./gen/ledgerd/v1/balance_pb.js";

/** A uint64 as the generated messages hold it (bigint); numbers must be safe integers. */
export type Uint64 = bigint | number;
/** An int64 (a moment in Unix ms) as the generated messages hold it (bigint), or a number. */
export type Int64 = bigint | number;
/** A change type as the enum or its name ("DEPOSIT", case-insensitive). */
export type ChangeTypeLike = ChangeType | keyof typeof ChangeType | string;
/** A lock as the enum (AccountLock.DEBITS), its name ("debits", "full") or the proto's name
 * ("ACCOUNT_LOCK_DEBITS"), any case: what the Python client's `lock_account` takes. */
export type AccountLockLike = AccountLock | "debits" | "full" | string;

export interface ClientOptions {
  /** Key id and secret, to sign every request (both or neither). */
  keyId?: string;
  secret?: string;
  /** TLS, trusting the system's roots, or `tlsRootCert` (PEM) when given. */
  tls?: boolean;
  tlsRootCert?: Buffer;
  /** Each attempt's timeout (default 10 000 ms). */
  timeoutMs?: number;
  /** The whole call's deadline, across retries (default: none, only `retry.attempts`). */
  deadlineMs?: number;
  retry?: Partial<RetryPolicy>;
  /** Extra grpc-js channel options (e.g. "grpc.ssl_target_name_override"). */
  channelOptions?: ChannelOptions;
}

export interface CallOptions {
  /** This call's attempt timeout, instead of the client's. */
  timeoutMs?: number;
  /** This call's deadline across retries, instead of the client's. */
  deadlineMs?: number;
}

export interface ChangeOptions {
  /** The idempotency key; a fresh UUID when not given. */
  requestId?: string;
  /** Answer once APPLIED/REJECTED (or with the current status when the deadline nears). */
  wait?: boolean;
  memo?: string;
}

export interface TransferOptions extends ChangeOptions {
  /** Debit the source's frozen amount instead of its available amount. */
  fromFrozen?: boolean;
}

/** GetBalance as of a moment or a version, read from the journal (docs/api.md); one of them. */
export interface AsOfOptions {
  /** The balances after every change applied at or before this moment (Unix ms, inclusive). */
  asOfUnixMs?: Int64;
  /** The balance right after the account's change of this version (needs a currency). */
  asOfVersion?: Uint64;
}

export interface StatementOptions {
  /** Entries per page (0: the server's 100; at most 1000). */
  pageSize?: number;
}

export interface StatementPageOptions extends StatementOptions {
  /** The previous page's `nextPageToken` ("" for the first page). */
  pageToken?: string;
}

/** A whole statement over [fromUnixMs, toUnixMs): every page's entries, in version order,
 * between its balances (opening + the entries = closing). */
export interface Statement {
  opening: Balance;
  closing: Balance;
  entries: JournalEntry[];
  /** When the opening's / closing's entry was applied (0: none). */
  openingAppliedAtUnixMs: bigint;
  closingAppliedAtUnixMs: bigint;
}

export interface TailOptions {
  /** From the oldest event kept, instead of only those published after the call starts. */
  fromBeginning?: boolean;
  /** End after this many events (0: until cancelled). */
  limit?: number;
  /** Bounds the whole stream (default: none). */
  timeoutMs?: number;
}

const CHANNEL_OPTIONS: ChannelOptions = {
  "grpc.max_send_message_length": 16 << 20,
  "grpc.max_receive_message_length": 16 << 20,
};

// grpc-js passes these bytes through as they are: what was signed is what is sent.
const passBytes = (body: Uint8Array): Buffer =>
  Buffer.from(body.buffer, body.byteOffset, body.byteLength);
const keepBytes = (body: Buffer): Buffer => body;

export function methodPath(method: { parent: { typeName: string }; name: string }): string {
  return `/${method.parent.typeName}/${method.name}`;
}

export function changeType(value: ChangeTypeLike): ChangeType {
  if (typeof value === "number") return value;
  const found = (ChangeType as unknown as Record<string, number | string>)[value.toUpperCase()];
  if (typeof found !== "number")
    throw new RangeError(`unknown change type ${JSON.stringify(value)}`);
  return found;
}

function uint64(value: Uint64): bigint {
  return typeof value === "bigint" ? value : BigInt(value); // BigInt(1.5) throws RangeError
}

function int64(value: Int64): bigint {
  return typeof value === "bigint" ? value : BigInt(value);
}

export function accountLock(value: AccountLockLike): AccountLock {
  if (typeof value === "number") return value;
  // The generated enum drops the proto's common prefix (AccountLock.DEBITS); the proto's own
  // name (ACCOUNT_LOCK_DEBITS) is accepted too.
  const name = value.toUpperCase().replace(/^ACCOUNT_LOCK_/, "");
  const found = (AccountLock as unknown as Record<string, number | string>)[name];
  if (typeof found !== "number") throw new RangeError(`unknown lock ${JSON.stringify(value)}`);
  return found;
}

/** A LockAccountRequest with a fresh request_id unless one is given. */
export function lockRequest(
  userId: Uint64,
  currency: string,
  lock: AccountLockLike,
  options: ChangeOptions = {},
): LockAccountRequest {
  return create(LockAccountRequestSchema, {
    requestId: options.requestId || randomUUID(),
    userId: uint64(userId),
    currency,
    lock: accountLock(lock),
    wait: options.wait ?? false,
    memo: options.memo ?? "",
  });
}

/** An UnlockAccountRequest with a fresh request_id unless one is given. */
export function unlockRequest(
  userId: Uint64,
  currency: string,
  options: ChangeOptions = {},
): UnlockAccountRequest {
  return create(UnlockAccountRequestSchema, {
    requestId: options.requestId || randomUUID(),
    userId: uint64(userId),
    currency,
    wait: options.wait ?? false,
    memo: options.memo ?? "",
  });
}

/** A ChangeBalanceRequest with a fresh request_id unless one is given (for changeMany). */
export function changeRequest(
  type: ChangeTypeLike,
  userId: Uint64,
  currency: string,
  amount: string,
  options: ChangeOptions = {},
): ChangeBalanceRequest {
  return create(ChangeBalanceRequestSchema, {
    requestId: options.requestId || randomUUID(),
    userId: uint64(userId),
    currency,
    type: changeType(type),
    amount,
    wait: options.wait ?? false,
    memo: options.memo ?? "",
  });
}

/** A TransferRequest with a fresh request_id unless one is given. */
export function transferRequest(
  fromUserId: Uint64,
  toUserId: Uint64,
  currency: string,
  amount: string,
  options: TransferOptions = {},
): TransferRequest {
  return create(TransferRequestSchema, {
    requestId: options.requestId || randomUUID(),
    fromUserId: uint64(fromUserId),
    toUserId: uint64(toUserId),
    currency,
    amount,
    fromFrozen: options.fromFrozen ?? false,
    wait: options.wait ?? false,
    memo: options.memo ?? "",
  });
}

/** The client: one channel, shared by every call; `close()` when done. */
export class LedgerdClient {
  private readonly grpc: Client;
  private readonly signer: Signer | undefined;
  private readonly timeoutMs: number;
  private readonly deadlineMs: number | undefined;
  private readonly retry: RetryPolicy;

  /** `target`: "host:port". */
  constructor(target: string, options: ClientOptions = {}) {
    if ((options.keyId === undefined) !== (options.secret === undefined)) {
      throw new TypeError("keyId and secret go together");
    }
    this.signer =
      options.keyId && options.secret ? new Signer(options.keyId, options.secret) : undefined;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.deadlineMs = options.deadlineMs;
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    const credentials: ChannelCredentials =
      options.tls || options.tlsRootCert !== undefined
        ? grpcCredentials.createSsl(options.tlsRootCert ?? null)
        : grpcCredentials.createInsecure();
    this.grpc = new Client(target, credentials, { ...CHANNEL_OPTIONS, ...options.channelOptions });
  }

  close(): void {
    this.grpc.close();
  }

  /**
   * Call one unary RPC with signing and retries: `client.call(BalanceService.method.getBalance,
   * {userId: 42n})`. Every RPC of the proto is callable so, typed, as soon as it is generated.
   *
   * @throws LedgerdRpcError the final failure (not retriable, out of attempts, or no time
   *   left for another attempt before the call's deadline).
   */
  async call<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    request: MessageInitShape<I>,
    options: CallOptions = {},
  ): Promise<MessageShape<O>> {
    const path = methodPath(method);
    const body = toBinary(method.input, create(method.input, request));
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const deadline = CallDeadline.after(options.deadlineMs ?? this.deadlineMs, performance.now());
    for (let attempt = 0; ; attempt++) {
      try {
        const answer = await this.unary(
          path,
          body,
          deadline.attemptTimeoutMs(timeoutMs, performance.now()),
        );
        return fromBinary(method.output, answer);
      } catch (error) {
        if (!isServiceError(error)) throw error;
        const waitMs = backoffMs(this.retry, attempt);
        const final =
          !RETRIABLE_CODES.has(error.code) ||
          attempt >= this.retry.attempts - 1 ||
          !deadline.allowsRetry(waitMs, performance.now());
        if (final) throw LedgerdRpcError.fromServiceError(error);
        await sleep(waitMs);
      }
    }
  }

  private unary(path: string, body: Uint8Array, timeoutMs: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.grpc.makeUnaryRequest(
        path,
        passBytes,
        keepBytes,
        body,
        this.metadata(path, body),
        { deadline: Date.now() + timeoutMs },
        (error: ServiceError | null, answer?: Buffer) => {
          if (error) reject(error);
          else resolve(answer ?? Buffer.alloc(0));
        },
      );
    });
  }

  /** Signed anew for every attempt: each needs a fresh nonce and timestamp. */
  private metadata(path: string, body: Uint8Array): Metadata {
    const metadata = new Metadata();
    for (const [key, value] of this.signer?.headers(path, body) ?? []) metadata.add(key, value);
    return metadata;
  }

  /** The balances (live, or as of a moment or version with `asOf`; `balanceAsOf` also gives
   * when each as-of balance's entry was applied). */
  async getBalance(userId: Uint64, currency = "", asOf: AsOfOptions = {}): Promise<Balance[]> {
    return (await this.balanceAsOf(userId, currency, asOf)).balances;
  }

  /** GetBalance's whole answer: as of a moment (inclusive) or a version, its `asOf` says when
   * each balance's entry was applied; with neither option, a live read (no `asOf`). */
  async balanceAsOf(
    userId: Uint64,
    currency = "",
    asOf: AsOfOptions = {},
  ): Promise<GetBalanceResponse> {
    return this.call(BalanceService.method.getBalance, {
      userId: uint64(userId),
      currency,
      // Unset stays unset: a present 0 is an as-of read of the very beginning.
      asOfUnixMs: asOf.asOfUnixMs === undefined ? undefined : int64(asOf.asOfUnixMs),
      asOfVersion: asOf.asOfVersion === undefined ? undefined : uint64(asOf.asOfVersion),
    });
  }

  /** One page of GetStatement over [fromUnixMs, toUnixMs). */
  async statementPage(
    userId: Uint64,
    currency: string,
    fromUnixMs: Int64,
    toUnixMs: Int64,
    options: StatementPageOptions = {},
  ): Promise<GetStatementResponse> {
    return this.call(BalanceService.method.getStatement, {
      userId: uint64(userId),
      currency,
      fromUnixMs: int64(fromUnixMs),
      toUnixMs: int64(toUnixMs),
      pageSize: options.pageSize ?? 0,
      pageToken: options.pageToken ?? "",
    });
  }

  /** Every page of a statement, one call each, as they are read (`for await`). */
  async *statementPages(
    userId: Uint64,
    currency: string,
    fromUnixMs: Int64,
    toUnixMs: Int64,
    options: StatementOptions = {},
  ): AsyncGenerator<GetStatementResponse, void, undefined> {
    let pageToken = "";
    do {
      const page = await this.statementPage(userId, currency, fromUnixMs, toUnixMs, {
        ...options,
        pageToken,
      });
      yield page;
      pageToken = page.nextPageToken;
    } while (pageToken);
  }

  /** The whole statement over [fromUnixMs, toUnixMs), every page read. */
  async statement(
    userId: Uint64,
    currency: string,
    fromUnixMs: Int64,
    toUnixMs: Int64,
    options: StatementOptions = {},
  ): Promise<Statement> {
    let first: GetStatementResponse | undefined;
    const entries: JournalEntry[] = [];
    for await (const page of this.statementPages(userId, currency, fromUnixMs, toUnixMs, options)) {
      first ??= page;
      entries.push(...page.entries);
    }
    // Every page carries the same opening and closing (the token pins the versions).
    if (first?.opening === undefined || first.closing === undefined)
      throw new LedgerdRpcError(Status.INTERNAL, "statement without its balances", new Metadata());
    return {
      opening: first.opening,
      closing: first.closing,
      entries,
      openingAppliedAtUnixMs: first.openingAppliedAtUnixMs,
      closingAppliedAtUnixMs: first.closingAppliedAtUnixMs,
    };
  }

  async change(
    type: ChangeTypeLike,
    userId: Uint64,
    currency: string,
    amount: string,
    options: ChangeOptions = {},
  ): Promise<ChangeResult> {
    return this.call(
      BalanceService.method.changeBalance,
      changeRequest(type, userId, currency, amount, options),
    );
  }

  /** ChangeBalances (at most 10 000); `atomic`: one user's changes, applied all or none.
   * Items without a request id get a fresh one (kept across retries). */
  async changeMany(
    changes: readonly MessageInitShape<typeof ChangeBalanceRequestSchema>[],
    options: { wait?: boolean; atomic?: boolean } = {},
  ): Promise<ChangeResult[]> {
    const items = changes.map((change) =>
      create(ChangeBalanceRequestSchema, {
        ...change,
        requestId: change.requestId || randomUUID(),
      }),
    );
    const answer = await this.call(BalanceService.method.changeBalances, {
      changes: items,
      wait: options.wait ?? false,
      atomic: options.atomic ?? false,
    });
    return answer.results;
  }

  /** Moves `amount` from one user to another; the transfer's state (PENDING without `wait`),
   * retried with the same request_id like a change. */
  async transfer(
    fromUserId: Uint64,
    toUserId: Uint64,
    currency: string,
    amount: string,
    options: TransferOptions = {},
  ): Promise<Transfer> {
    const request = transferRequest(fromUserId, toUserId, currency, amount, options);
    const answer = await this.call(BalanceService.method.transfer, request);
    return requireTransfer(answer.transfer);
  }

  /** LockAccount (`lock`: "debits", "full" or an AccountLock); needs an `admin` key when
   * signing is on. Retried with the same request_id like a change. */
  async lockAccount(
    userId: Uint64,
    currency: string,
    lock: AccountLockLike,
    options: ChangeOptions = {},
  ): Promise<ChangeResult> {
    const request = lockRequest(userId, currency, lock, options);
    const answer = await this.call(BalanceService.method.lockAccount, request);
    return requireResult(answer.result);
  }

  /** UnlockAccount; needs an `admin` key when signing is on. Retried like a change. */
  async unlockAccount(
    userId: Uint64,
    currency: string,
    options: ChangeOptions = {},
  ): Promise<ChangeResult> {
    const request = unlockRequest(userId, currency, options);
    const answer = await this.call(BalanceService.method.unlockAccount, request);
    return requireResult(answer.result);
  }

  async getTransfer(requestId: string): Promise<Transfer> {
    const answer = await this.call(BalanceService.method.getTransfer, { requestId });
    return requireTransfer(answer.transfer);
  }

  async getChange(requestId: string): Promise<ChangeResult> {
    return this.call(BalanceService.method.getChange, { requestId });
  }

  async journal(
    userId: Uint64,
    currency: string,
    afterVersion: Uint64 = 0,
    limit = 100,
  ): Promise<JournalEntry[]> {
    const answer = await this.call(BalanceService.method.listJournal, {
      userId: uint64(userId),
      currency,
      afterVersion: uint64(afterVersion),
      limit,
    });
    return answer.entries;
  }

  async health(): Promise<HealthCheckResponse> {
    return this.call(BalanceService.method.healthCheck, {});
  }

  /**
   * The change events (docs/events.md) as an async iterator: from the oldest kept, or those
   * published after this resolves (the server has positioned its reader by then). Not
   * retried. Leaving a `for await` loop (or `cancel()`) ends the call.
   *
   * @throws LedgerdRpcError the call failed before it was positioned (iteration throws it
   *   for a failure later).
   */
  async tailEvents(options: TailOptions = {}): Promise<EventStream> {
    return this.serverStream(
      BalanceService.method.tailEvents,
      { fromBeginning: options.fromBeginning ?? false, limit: options.limit ?? 0 },
      options.timeoutMs,
    ).then((stream) => new EventStream(stream));
  }

  /** A server-streaming call, signed, resolved once the server sent its headers. */
  async serverStream<I extends DescMessage, O extends DescMessage>(
    method: DescMethodServerStreaming<I, O>,
    request: MessageInitShape<I>,
    timeoutMs?: number,
  ): Promise<MessageStream<MessageShape<O>>> {
    const path = methodPath(method);
    const body = toBinary(method.input, create(method.input, request));
    const call: ClientReadableStream<MessageShape<O>> = this.grpc.makeServerStreamRequest(
      path,
      passBytes,
      (bytes: Buffer) => fromBinary(method.output, bytes),
      body,
      this.metadata(path, body),
      timeoutMs === undefined ? {} : { deadline: Date.now() + timeoutMs },
    );
    const stream = new MessageStream(call);
    await stream.positioned;
    return stream;
  }
}

function requireTransfer(transfer: Transfer | undefined): Transfer {
  if (transfer === undefined)
    throw new LedgerdRpcError(Status.INTERNAL, "answer without a transfer", new Metadata());
  return transfer;
}

function requireResult(result: ChangeResult | undefined): ChangeResult {
  if (result === undefined)
    throw new LedgerdRpcError(Status.INTERNAL, "answer without a result", new Metadata());
  return result;
}

/** The messages of one server-streaming call, as an async iterator; `cancel()` ends it, and
 * iteration then stops quietly. */
export class MessageStream<T> implements AsyncIterable<T> {
  /** Settles when the server sent its headers (resolved) or failed first (rejected). */
  readonly positioned: Promise<void>;
  private cancelled = false;

  constructor(private readonly call: ClientReadableStream<T>) {
    // An error while nobody iterates (a cancel, the stream's deadline) must not crash the
    // process as an unhandled 'error' event; the iterator still sees it (the stream keeps it).
    call.on("error", () => {});
    this.positioned = new Promise((resolve, reject) => {
      const onError = (error: ServiceError): void =>
        reject(LedgerdRpcError.fromServiceError(error));
      call.once("error", onError);
      call.once("metadata", () => {
        call.off("error", onError);
        resolve();
      });
    });
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    try {
      for await (const message of this.call) yield message as T;
    } catch (error) {
      if (!isServiceError(error)) throw error;
      if (this.cancelled && error.code === Status.CANCELLED) return;
      throw LedgerdRpcError.fromServiceError(error);
    } finally {
      this.cancel();
    }
  }

  cancel(): void {
    this.cancelled = true;
    this.call.cancel();
  }
}

/** TailEvents' stream, yielding each response's BalanceEvent. */
export class EventStream implements AsyncIterable<BalanceEvent> {
  constructor(private readonly stream: MessageStream<TailEventsResponse>) {}

  async *[Symbol.asyncIterator](): AsyncIterator<BalanceEvent> {
    for await (const response of this.stream) {
      if (response.event !== undefined) yield response.event;
    }
  }

  cancel(): void {
    this.stream.cancel();
  }
}
