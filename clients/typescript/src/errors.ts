/**
 * The errors the client throws: one root, a branch for refused requests, one for a service in trouble.
 *
 *     PennyClientError                 anything the client throws (a user's failing code is a result, not this)
 *     ├── ConnectionFailed             no answer from the service, or a stream that could not be resumed
 *     └── ApiError                     the service answered with its error envelope (`code`, `httpStatus`, ...)
 *         ├── RequestError             4xx: this request will not succeed as it is (an unknown 4xx lands here)
 *         │   ├── ValidationError      400 validation_error
 *         │   ├── Unsupported          400 unsupported
 *         │   ├── Unauthorized         401 unauthorized
 *         │   ├── Forbidden            403 forbidden
 *         │   ├── NotFound             404 not_found
 *         │   ├── Conflict             409 conflict (the session is lost or expired; the job already ended)
 *         │   ├── PayloadTooLarge      413 payload_too_large
 *         │   ├── UnsupportedMediaType 415 unsupported_media_type
 *         │   └── PolicyViolation      422 policy_violation
 *         └── ServiceError             429 and 5xx: the service cannot serve now (an unknown 5xx lands here)
 *             ├── Overloaded           429 overloaded (`retryAfterMs` from Retry-After)
 *             ├── Unavailable          503 unavailable (`retryAfterMs` from Retry-After)
 *             └── InternalError        500 internal_error
 *
 * An aborted call rejects with the AbortSignal's reason (a DOMException named `AbortError` by default), as
 * fetch does, never with one of these.
 */

/** Root of every error the client throws. */
export class PennyClientError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message);
    this.name = new.target.name;
    if (options && "cause" in options) {
      (this as { cause?: unknown }).cause = options.cause;
    }
  }
}

/** No answer from the service (after the allowed retries), or a broken stream that could not be resumed. */
export class ConnectionFailed extends PennyClientError {}

/** The fields of the service's error envelope `{"error": {code, message, details}}`. */
export interface ApiErrorInit {
  code?: string;
  httpStatus: number;
  details?: Record<string, unknown>;
  /** Retry-After in milliseconds, when the service sent one. */
  retryAfterMs?: number | null;
}

/** A request the service refused. */
export class ApiError extends PennyClientError {
  /** The envelope's code (snake_case), or `http_<status>` when the answer had no envelope. */
  readonly code: string;
  readonly httpStatus: number;
  readonly details: Record<string, unknown>;
  /** Retry-After in milliseconds, or null. */
  readonly retryAfterMs: number | null;

  constructor(message: string, init: ApiErrorInit) {
    super(message);
    this.code = init.code ?? (this.constructor as typeof ApiError).code;
    this.httpStatus = init.httpStatus;
    this.details = init.details ?? {};
    this.retryAfterMs = init.retryAfterMs ?? null;
  }

  /** The error code this class stands for. */
  static code = "error";

  override toString(): string {
    return `${this.name}: ${this.code} (${this.httpStatus}): ${this.message}`;
  }
}

/** The request itself was refused (4xx other than 429): retrying it unchanged will not help. */
export class RequestError extends ApiError {}
export class ValidationError extends RequestError {
  static override code = "validation_error";
}
export class Unsupported extends RequestError {
  static override code = "unsupported";
}
export class Unauthorized extends RequestError {
  static override code = "unauthorized";
}
export class Forbidden extends RequestError {
  static override code = "forbidden";
}
export class NotFound extends RequestError {
  static override code = "not_found";
}
export class Conflict extends RequestError {
  static override code = "conflict";
}
export class PayloadTooLarge extends RequestError {
  static override code = "payload_too_large";
}
export class UnsupportedMediaType extends RequestError {
  static override code = "unsupported_media_type";
}
export class PolicyViolation extends RequestError {
  static override code = "policy_violation";
}

/** The service cannot serve the request now (429, 5xx); a later retry may succeed. */
export class ServiceError extends ApiError {}
export class Overloaded extends ServiceError {
  static override code = "overloaded";
}
export class Unavailable extends ServiceError {
  static override code = "unavailable";
}
export class InternalError extends ServiceError {
  static override code = "internal_error";
}

const BY_CODE: ReadonlyMap<string, typeof ApiError> = new Map(
  [
    ValidationError,
    Unsupported,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    PolicyViolation,
    Overloaded,
    Unavailable,
    InternalError,
  ].map((cls) => [cls.code, cls] as const),
);

/** Retry-After in milliseconds (the delta-seconds form the service sends), or null. */
export function parseRetryAfter(raw: string | null | undefined): number | null {
  if (raw == null || raw.trim() === "") {
    return null;
  }
  const seconds = Number(raw.trim());
  if (!Number.isFinite(seconds)) {
    return null; // an HTTP date: the service does not send one; treated as absent
  }
  return Math.max(seconds, 0) * 1000;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The error for a refused request: by the envelope's code, else by the status's branch. */
export function errorFromResponse(httpStatus: number, body: string, retryAfter: string | null): ApiError {
  const retryAfterMs = parseRetryAfter(retryAfter);
  let code: string | undefined;
  let message = body.trim().slice(0, 500) || `HTTP ${httpStatus}`;
  let details: Record<string, unknown> = {};
  let envelope: unknown;
  try {
    envelope = JSON.parse(body);
  } catch {
    envelope = undefined;
  }
  if (isRecord(envelope) && isRecord(envelope.error)) {
    const error = envelope.error;
    code = typeof error.code === "string" && error.code ? error.code : undefined;
    message = typeof error.message === "string" && error.message ? error.message : message;
    details = isRecord(error.details) ? error.details : {};
  }
  let cls = code === undefined ? undefined : BY_CODE.get(code);
  if (cls === undefined) {
    cls = httpStatus >= 400 && httpStatus < 500 && httpStatus !== 429 ? RequestError : ServiceError;
  }
  return new cls(message, { code: code ?? `http_${httpStatus}`, httpStatus, details, retryAfterMs });
}
