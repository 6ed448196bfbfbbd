/**
 * What a client learns from a failed call: the google.rpc.Status details, decoded.
 *
 * ledgerd sends every error's details in the `grpc-status-details-bin` trailer (Google
 * AIP-193): `google.rpc.ErrorInfo` with a stable `reason` (docs/api.md, Errors), and for
 * INVALID_ARGUMENT `google.rpc.BadRequest` with one violation per bad field. A call's final
 * failure is a `LedgerdRpcError` with them as typed fields, as the Python client's
 * `LedgerdRpcError` (src/ledgerd/rpc_errors.py).
 */
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { fromBinary } from "@bufbuild/protobuf";
import { Metadata, status as Status, type ServiceError } from "@grpc/grpc-js";
import { BadRequestSchema, ErrorInfoSchema } from "./gen/google/rpc/error_details_pb.js";
import { StatusSchema, type Status as RpcStatus } from "./gen/google/rpc/status_pb.js";

export const DETAILS_TRAILER = "grpc-status-details-bin";

/** The codes a call is retried on, as the Python client: nothing was done, or a retry with
 * the same request id is answered as a duplicate (never applied twice). */
export const RETRIABLE_CODES: ReadonlySet<Status> = new Set([
  Status.UNAVAILABLE,
  Status.DEADLINE_EXCEEDED,
  Status.RESOURCE_EXHAUSTED,
]);

export interface FieldViolation {
  /** The field, e.g. `amount` or `changes[5].amount`. */
  field: string;
  description: string;
}

/**
 * A failed call, with its status details as typed fields.
 *
 * `code`: the gRPC status code (compare with `Status.INVALID_ARGUMENT`); `codeName` its name.
 * `reason`: the stable UPPER_SNAKE reason (`REQUEST_CONFLICT`), `""` when the answer had none
 * (an error from gRPC itself, such as DEADLINE_EXCEEDED). `metadata`: the reason's context
 * (`{request_id: "order-1"}`). `fieldViolations`: every bad field, empty unless
 * INVALID_ARGUMENT. `details`: the server's status message. `status`: the whole
 * google.rpc.Status when the server sent one. `retriable`: whether trying again may help.
 */
export class LedgerdRpcError extends Error {
  override readonly name = "LedgerdRpcError";
  readonly code: Status;
  readonly codeName: string;
  readonly details: string;
  readonly reason: string = "";
  readonly domain: string = "";
  readonly metadata: Readonly<Record<string, string>> = {};
  readonly fieldViolations: readonly FieldViolation[] = [];
  readonly status: RpcStatus | undefined;
  readonly trailers: Metadata;

  constructor(code: Status, details: string, trailers: Metadata, options?: { cause?: unknown }) {
    const status = richStatus(code, trailers);
    let reason = "";
    let domain = "";
    let metadata: Record<string, string> = {};
    let fieldViolations: FieldViolation[] = [];
    for (const detail of status?.details ?? []) {
      const info = anyUnpack(detail, ErrorInfoSchema);
      if (info !== undefined) {
        reason = info.reason;
        domain = info.domain;
        metadata = { ...info.metadata };
        continue;
      }
      const badRequest = anyUnpack(detail, BadRequestSchema);
      if (badRequest !== undefined) {
        fieldViolations = badRequest.fieldViolations.map((v) => ({
          field: v.field,
          description: v.description,
        }));
      }
    }
    const codeName = Status[code] ?? String(code);
    super(`${codeName}${reason ? ` (${reason})` : ""}: ${details}`, options);
    this.code = code;
    this.codeName = codeName;
    this.details = details;
    this.reason = reason;
    this.domain = domain;
    this.metadata = metadata;
    this.fieldViolations = fieldViolations;
    this.status = status;
    this.trailers = trailers;
  }

  get retriable(): boolean {
    return RETRIABLE_CODES.has(this.code);
  }

  /** The error of a failed grpc-js call, with its trailers decoded. */
  static fromServiceError(error: ServiceError): LedgerdRpcError {
    return new LedgerdRpcError(error.code, error.details ?? "", error.metadata ?? new Metadata(), {
      cause: error,
    });
  }
}

/** The google.rpc.Status in the trailers, if there is one that matches the call's code. */
function richStatus(code: Status, trailers: Metadata): RpcStatus | undefined {
  const value = trailers.get(DETAILS_TRAILER)[0];
  if (!(value instanceof Uint8Array)) return undefined;
  let status: RpcStatus;
  try {
    status = fromBinary(StatusSchema, value);
  } catch {
    return undefined;
  }
  // A proxy may have replaced the call's status; details of another status would mislead.
  return status.code === code ? status : undefined;
}

export function isServiceError(error: unknown): error is ServiceError {
  return (
    error instanceof Error &&
    typeof (error as Partial<ServiceError>).code === "number" &&
    (error as Partial<ServiceError>).metadata instanceof Metadata
  );
}
