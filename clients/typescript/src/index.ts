/** @ledgerd/client: the ledgerd.v1 API for Node (ESM, typed). See README.md. */
export {
  LedgerdClient,
  EventStream,
  MessageStream,
  changeRequest,
  transferRequest,
  lockRequest,
  unlockRequest,
  changeType,
  accountLock,
  methodPath,
  type AccountLockLike,
  type AsOfOptions,
  type ChangeOptions,
  type ChangeTypeLike,
  type ClientOptions,
  type CallOptions,
  type Statement,
  type StatementOptions,
  type StatementPageOptions,
  type TailOptions,
  type TransferOptions,
  type Int64,
  type Uint64,
} from "./client.js";
export {
  LedgerdRpcError,
  RETRIABLE_CODES,
  DETAILS_TRAILER,
  type FieldViolation,
} from "./errors.js";
export { backoffMs, CallDeadline, DEFAULT_RETRY, type RetryPolicy } from "./retry.js";
export {
  Signer,
  canonicalString,
  signature,
  KEY_ID_HEADER,
  NONCE_HEADER,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
} from "./signing.js";
export { status as Status } from "@grpc/grpc-js";
// The generated ledgerd.v1 messages, enums and service descriptor (BalanceService.method.*).
export * from "./gen/ledgerd/v1/balance_pb.js";
