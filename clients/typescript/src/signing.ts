/**
 * The request-signing scheme of docs/architecture.md section 5, byte for byte as the Python
 * client (src/ledgerd/signing.py): clients/signing-vectors.json is checked by both.
 *
 *     canonical = "v1\n{method}\n{key id}\n{timestamp ms}\n{nonce}\n{hex sha256(body)}"
 *     signature = lowercase hex HMAC-SHA256(secret, canonical)
 */
import { createHash, createHmac, randomBytes } from "node:crypto";

export const SCHEME = "v1";
export const KEY_ID_HEADER = "x-ledgerd-key-id";
export const TIMESTAMP_HEADER = "x-ledgerd-timestamp";
export const NONCE_HEADER = "x-ledgerd-nonce";
export const SIGNATURE_HEADER = "x-ledgerd-signature";

/** The text that is signed: scheme, full method, key id, time, nonce, body digest. */
export function canonicalString(
  method: string,
  keyId: string,
  timestampMs: number,
  nonce: string,
  body: Uint8Array,
): string {
  const digest = createHash("sha256").update(body).digest("hex");
  return `${SCHEME}\n${method}\n${keyId}\n${timestampMs}\n${nonce}\n${digest}`;
}

/** Lowercase hex HMAC-SHA256 of the canonical string (both UTF-8, as in Python). */
export function signature(secret: string, canonical: string): string {
  return createHmac("sha256", Buffer.from(secret, "utf8")).update(canonical, "utf8").digest("hex");
}

/** Signs requests with one key (client side). */
export class Signer {
  constructor(
    readonly keyId: string,
    private readonly secret: string,
  ) {}

  /** The four metadata entries for one call of `method` with the serialized `body`. */
  headers(
    method: string,
    body: Uint8Array,
    options: { timestampMs?: number; nonce?: string } = {},
  ): [string, string][] {
    const timestampMs = options.timestampMs ?? Date.now();
    // A fresh nonce per attempt: the server refuses one it has seen in its window.
    const nonce = options.nonce || randomBytes(16).toString("hex");
    const canonical = canonicalString(method, this.keyId, timestampMs, nonce, body);
    return [
      [KEY_ID_HEADER, this.keyId],
      [TIMESTAMP_HEADER, String(timestampMs)],
      [NONCE_HEADER, nonce],
      [SIGNATURE_HEADER, signature(this.secret, canonical)],
    ];
  }

  toJSON(): { keyId: string } {
    return { keyId: this.keyId }; // never print the secret
  }
}
