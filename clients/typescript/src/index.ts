/**
 * @penny/sandbox-client: the TypeScript client of PENNY Sandbox (Node 18+ and browsers, no runtime dependency).
 *
 *     import { SandboxClient } from "@penny/sandbox-client";
 *     const client = new SandboxClient({ baseUrl: "http://localhost:3003" });
 *     const result = await client.execute({ code: 'print("Hello, World!")' });
 */

export { SandboxClient, Sessions, DEFAULT_BASE_URL, type SandboxClientOptions, type RunRequest } from "./client.js";
export { Job, type JobEventsOptions } from "./job.js";
export { Session, type SessionRun } from "./session.js";
export { EventStream, StreamCursor } from "./stream.js";
export { SSEParser, type ServerSentEvent } from "./sse.js";
export { RetryPolicy, type RetryOptions } from "./retry.js";
export type { ApiKey, CallOptions, FetchLike } from "./transport.js";
export {
  EVENT_TYPES,
  type SandboxEvent,
  type QueuedEvent,
  type StartedEvent,
  type StdoutEvent,
  type StderrEvent,
  type PlotEvent,
  type DisplayEvent,
  type MetricsEvent,
  type ResultEvent,
  type UnknownEvent,
} from "./events.js";
export {
  PennyClientError,
  ConnectionFailed,
  ApiError,
  RequestError,
  ValidationError,
  Unsupported,
  Unauthorized,
  Forbidden,
  NotFound,
  Conflict,
  PayloadTooLarge,
  UnsupportedMediaType,
  PolicyViolation,
  ServiceError,
  Overloaded,
  Unavailable,
  InternalError,
  errorFromResponse,
  type ApiErrorInit,
} from "./errors.js";
export type * from "./types.js";
