/** SandboxClient: the PENNY Sandbox API over fetch, with typed answers, typed errors, retries and resumable streams. */

import { ConnectionFailed, PennyClientError } from "./errors.js";
import type { SandboxEvent } from "./events.js";
import { Job, type JobEventsOptions } from "./job.js";
import { RetryPolicy, type RetryOptions } from "./retry.js";
import { Session } from "./session.js";
import { EventStream, jobEventsCall, StreamCursor } from "./stream.js";
import { type ApiKey, type Call, type CallOptions, type FetchLike, throwIfAborted, Transport } from "./transport.js";
import type {
  CancelResult,
  ExecuteRequest,
  ExecutionResult,
  Health,
  InstallReport,
  InstallRequest,
  JobAccepted,
  JobInfo,
  PackageInfo,
  PackagesQuery,
  SessionCreated,
  SessionCreateRequest,
  SessionInfo,
  SetVariablesResult,
  ValidateRequest,
  ValidationReport,
  Variable,
  Version,
} from "./types.js";

const API = "/api/v1";
/** Where `make run` serves the API. */
export const DEFAULT_BASE_URL = "http://localhost:3003";
/** A stream silent this long is dropped and resumed; the service sends a keepalive every 15 s. */
export const DEFAULT_STREAM_IDLE_TIMEOUT_MS = 60_000;
export const DEFAULT_RECONNECTS = 5;

/** How a SandboxClient reaches the service. */
export interface SandboxClientOptions {
  /** The service's URL (default http://localhost:3003); `""` in a browser page served from the same origin. */
  baseUrl?: string;
  /**
   * Sent as `Authorization: Bearer <apiKey>`; needed when the service has API keys configured. A function is
   * asked for the current key before every request (a key the user can change in a page).
   */
  apiKey?: ApiKey;
  /** The fetch to use (default the global one). */
  fetch?: FetchLike;
  /** Retries of idempotent calls on 429, 503 and no answer: a count, or the backoff in detail (default 3). */
  retries?: number | RetryOptions;
  /** How often in a row a broken event stream is resumed without receiving an event (default 5). */
  reconnects?: number;
  /** Milliseconds a stream may stay silent before it is dropped and resumed (default 60000). */
  streamIdleTimeoutMs?: number;
  /** Extra headers of every request. */
  headers?: Record<string, string>;
}

/** What the code to run is: the code alone, or the whole request. */
export type RunRequest = string | ExecuteRequest;

function executionBody(request: RunRequest): ExecuteRequest {
  return typeof request === "string" ? { code: request } : request;
}

function segment(value: string): string {
  return encodeURIComponent(value);
}

function defaultFetch(): FetchLike {
  if (typeof globalThis.fetch !== "function") {
    throw new PennyClientError("no global fetch: use Node 18+ or a browser, or pass options.fetch");
  }
  return globalThis.fetch.bind(globalThis);
}

/** A client of one PENNY Sandbox service. Every call takes `{signal}` (an AbortSignal) as its last argument. */
export class SandboxClient {
  readonly baseUrl: string;
  /** Sessions: create, get, list, setVariables, delete, and running code in one. */
  readonly sessions: Sessions;
  private readonly transport: Transport;
  private readonly reconnects: RetryPolicy;
  private readonly idleTimeoutMs: number;

  constructor(options: SandboxClientOptions = {}) {
    const retries =
      typeof options.retries === "number"
        ? new RetryPolicy({ maxRetries: options.retries })
        : new RetryPolicy(options.retries ?? {});
    this.transport = new Transport({
      baseUrl: options.baseUrl ?? DEFAULT_BASE_URL,
      apiKey: options.apiKey ?? null,
      fetch: options.fetch ?? defaultFetch(),
      retries,
      headers: options.headers ?? {},
    });
    this.baseUrl = this.transport.baseUrl;
    this.reconnects = retries.withMaxRetries(options.reconnects ?? DEFAULT_RECONNECTS);
    this.idleTimeoutMs = options.streamIdleTimeoutMs ?? DEFAULT_STREAM_IDLE_TIMEOUT_MS;
    this.sessions = new Sessions(this, this.transport);
  }

  // -- executions and jobs

  /**
   * Run code and resolve with its ExecutionResult once it ended. Code that raised, timed out or ran out of memory
   * is a result (see `status`), not an error. Not retried unless `{retry: true}` (the code could run twice).
   */
  async execute(request: RunRequest, options: CallOptions = {}): Promise<ExecutionResult> {
    const call: Call = {
      method: "POST",
      path: `${API}/execute`,
      body: executionBody(request),
      retry: options.retry ?? false,
    };
    const response = await this.transport.send(call, options.signal);
    const data = await this.transport.readJson<ExecutionResult | JobAccepted>(call, response, options.signal);
    if (response.status === 202) {
      // Accepted but not ended within the service's wait (a long queue): follow the job to its end.
      return this.job(data.jobId).wait({ signal: options.signal });
    }
    return data as ExecutionResult;
  }

  /**
   * Run code, passing each event to `onEvent` as it happens (awaited when it returns a promise); resolves with the
   * ExecutionResult after the `result` event. A dropped connection is resumed without losing or repeating events.
   */
  executeStream(
    request: RunRequest,
    onEvent: (event: SandboxEvent) => unknown,
    options: CallOptions = {},
  ): Promise<ExecutionResult> {
    return this.stream(request, options).untilResult(onEvent);
  }

  /**
   * Run code; its events as an async iterator (`for await (const event of client.stream(req))`), ending with the
   * `result` event. The code is submitted when iteration starts.
   */
  stream(request: RunRequest, options: CallOptions = {}): EventStream {
    const call: Call = {
      method: "POST",
      path: `${API}/execute/stream`,
      body: executionBody(request),
      headers: { Accept: "text/event-stream" },
      retry: options.retry ?? false,
    };
    return this.eventStream(call, new StreamCursor(), options.signal);
  }

  /** Queue code and resolve at once with a Job to wait for, follow or cancel. */
  async submit(request: RunRequest, options: CallOptions = {}): Promise<Job> {
    const data = await this.transport.json<JobAccepted>(
      { method: "POST", path: `${API}/jobs`, body: executionBody(request), retry: options.retry ?? false },
      options.signal,
    );
    return new Job(this, data.jobId);
  }

  /** A handle on an existing job (no request is made). */
  job(jobId: string): Job {
    return new Job(this, jobId);
  }

  /** Where a job is, and its result once it ended. */
  getJob(jobId: string, options: CallOptions = {}): Promise<JobInfo> {
    return this.transport.json<JobInfo>({ method: "GET", path: `${API}/jobs/${segment(jobId)}` }, options.signal);
  }

  /** A job's events from the start, or after `lastEventId`; resumed if the connection drops. */
  jobEvents(jobId: string, options: JobEventsOptions = {}): EventStream {
    const lastEventId = options.lastEventId ?? null;
    return this.eventStream(jobEventsCall(jobId, lastEventId), new StreamCursor(jobId, lastEventId), options.signal);
  }

  /** Cancel a job: `cancelled`, or its status while the kill is on its way. Conflict if it already ended. */
  cancelJob(jobId: string, options: CallOptions = {}): Promise<CancelResult> {
    const call: Call = { method: "DELETE", path: `${API}/jobs/${segment(jobId)}` };
    return this.transport.json<CancelResult>(call, options.signal);
  }

  /** A handle on an existing session (no request is made). */
  session(sessionId: string): Session {
    return new Session(this, sessionId);
  }

  // -- checks, packages, operations

  /** Whether the policy check lets the code run, with its findings (nothing runs; retried like a GET). */
  validate(request: string | ValidateRequest, options: CallOptions = {}): Promise<ValidationReport> {
    const body = typeof request === "string" ? { code: request } : request;
    const call: Call = { method: "POST", path: `${API}/validate`, body, retry: true };
    return this.transport.json<ValidationReport>(call, options.signal);
  }

  /** The packages the sandbox offers, filtered by a search string and a category. */
  async packages(query: PackagesQuery = {}, options: CallOptions = {}): Promise<PackageInfo[]> {
    const data = await this.transport.json<{ packages: PackageInfo[] }>(
      { method: "GET", path: `${API}/packages`, query: { search: query.search, category: query.category } },
      options.signal,
    );
    return data.packages;
  }

  /** Install allowlisted packages into a session: what was installed, and what failed and why. */
  installPackages(request: InstallRequest, options: CallOptions = {}): Promise<InstallReport> {
    return this.transport.json<InstallReport>(
      { method: "POST", path: `${API}/packages/install`, body: request, retry: options.retry ?? false },
      options.signal,
    );
  }

  /** The service's health; an unhealthy service (HTTP 503) still resolves, with status `unhealthy`. */
  async health(options: CallOptions = {}): Promise<Health> {
    const response = await this.transport.send({ method: "GET", path: "/health", accept: [503] }, options.signal);
    let data: unknown;
    try {
      data = await response.json();
    } catch (error) {
      throwIfAborted(options.signal);
      throw new ConnectionFailed(`GET /health answered ${response.status} without a health document`, { cause: error });
    }
    if (typeof data !== "object" || data === null || !("status" in data)) {
      throw new ConnectionFailed(`GET /health answered ${response.status} without a health document`);
    }
    return data as Health;
  }

  /** The service's version and the version of the API contract it serves. */
  version(options: CallOptions = {}): Promise<Version> {
    return this.transport.json<Version>({ method: "GET", path: `${API}/version` }, options.signal);
  }

  private eventStream(call: Call, cursor: StreamCursor, signal: AbortSignal | undefined): EventStream {
    return new EventStream(this.transport, call, cursor, {
      signal,
      reconnects: this.reconnects,
      idleTimeoutMs: this.idleTimeoutMs,
    });
  }
}

/** The session calls of a client (`client.sessions`). */
export class Sessions {
  constructor(
    private readonly client: SandboxClient,
    private readonly transport: Transport,
  ) {}

  /** Create a session (on the least loaded worker host); a Session handle. Not retried unless `{retry: true}`. */
  async create(request: SessionCreateRequest = {}, options: CallOptions = {}): Promise<Session> {
    const created = await this.transport.json<SessionCreated>(
      { method: "POST", path: `${API}/sessions`, body: request, retry: options.retry ?? false },
      options.signal,
    );
    return new Session(this.client, created.sessionId, created);
  }

  /** A session's status, times, execution count, variables and resource use. */
  get(sessionId: string, options: CallOptions = {}): Promise<SessionInfo> {
    const call: Call = { method: "GET", path: `${API}/sessions/${segment(sessionId)}` };
    return this.transport.json<SessionInfo>(call, options.signal);
  }

  /** The caller's sessions. */
  async list(options: CallOptions = {}): Promise<SessionInfo[]> {
    const data = await this.transport.json<{ sessions: SessionInfo[] }>(
      { method: "GET", path: `${API}/sessions` },
      options.signal,
    );
    return data.sessions;
  }

  /** Set JSON values in a session's namespace (in order with its runs); its variables afterwards. */
  async setVariables(
    sessionId: string,
    variables: Record<string, unknown>,
    options: CallOptions = {},
  ): Promise<Record<string, Variable>> {
    const data = await this.transport.json<SetVariablesResult>(
      { method: "PUT", path: `${API}/sessions/${segment(sessionId)}/variables`, body: { variables } },
      options.signal,
    );
    return data.variables;
  }

  /** Delete a session; its sandbox is destroyed at once. NotFound if it is already gone. */
  async delete(sessionId: string, options: CallOptions = {}): Promise<void> {
    const response = await this.transport.send(
      { method: "DELETE", path: `${API}/sessions/${segment(sessionId)}` },
      options.signal,
    );
    await response.body?.cancel();
  }

  /** Run code in a session; its ExecutionResult. */
  execute(sessionId: string, request: RunRequest, options: CallOptions = {}): Promise<ExecutionResult> {
    const body = typeof request === "string" ? { code: request } : request;
    return this.client.execute({ ...body, sessionId }, options);
  }
}
