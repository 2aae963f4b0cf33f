/** Sending a call over fetch: headers, JSON, retries with backoff, and AbortSignal handling. */

import { ConnectionFailed, errorFromResponse } from "./errors.js";
import { IDEMPOTENT_METHODS, RetryPolicy, retryDelayMs } from "./retry.js";

/** Options every call takes. */
export interface CallOptions {
  /** Aborts the call (and a stream's connection); the call then rejects with the signal's reason. */
  signal?: AbortSignal;
  /**
   * Retry on 429, 503 or no answer even though the call is not idempotent (a POST that runs code may then run
   * twice). Idempotent calls (GET, PUT, DELETE, validate) are retried anyway.
   */
  retry?: boolean;
}

/** One request of the API. */
export interface Call {
  method: "GET" | "POST" | "PUT" | "DELETE";
  /** Path from the base URL, starting with `/`. */
  path: string;
  body?: unknown;
  query?: Record<string, string | undefined>;
  headers?: Record<string, string>;
  /** Retry on 429/503/no answer; undefined: retry when the method is idempotent. */
  retry?: boolean;
  /** Statuses >= 400 that are answers, not errors (`/health`'s 503). */
  accept?: readonly number[];
}

/** The fetch function the client uses (the global one by default). */
export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

/** The reason an aborted signal carries, or a DOMException `AbortError` on platforms without reasons. */
export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException("This operation was aborted", "AbortError");
}

/** Throw the signal's reason if it is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw abortReason(signal);
  }
}

/** Resolve after `ms` milliseconds, or reject with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortReason(signal as AbortSignal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * An AbortController that also aborts (with the same reason) when `parent` does; `dispose()` unhooks it.
 * (AbortSignal.any is not in Node 18.)
 */
export function childController(parent: AbortSignal | undefined): { controller: AbortController; dispose: () => void } {
  const controller = new AbortController();
  if (parent === undefined) {
    return { controller, dispose: () => undefined };
  }
  if (parent.aborted) {
    controller.abort(abortReason(parent));
    return { controller, dispose: () => undefined };
  }
  const onAbort = (): void => controller.abort(abortReason(parent));
  parent.addEventListener("abort", onAbort, { once: true });
  return { controller, dispose: () => parent.removeEventListener("abort", onAbort) };
}

/** An API key, or a function that gives the current one (read before every request). */
export type ApiKey = string | null | undefined | (() => string | null | undefined);

/** How the transport reaches the service. */
export interface TransportOptions {
  baseUrl: string;
  apiKey?: ApiKey;
  fetch: FetchLike;
  retries: RetryPolicy;
  headers?: Record<string, string>;
}

export class Transport {
  readonly baseUrl: string;
  readonly retries: RetryPolicy;
  private readonly fetchFn: FetchLike;
  private readonly headers: Record<string, string>;
  private readonly apiKey: ApiKey;

  constructor(options: TransportOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.retries = options.retries;
    this.fetchFn = options.fetch;
    this.headers = { ...(options.headers ?? {}) };
    this.apiKey = options.apiKey;
  }

  private authorization(): Record<string, string> {
    const key = typeof this.apiKey === "function" ? this.apiKey() : this.apiKey;
    return key ? { Authorization: `Bearer ${key}` } : {};
  }

  /** The absolute URL of a call. */
  url(call: Call): string {
    const params = Object.entries(call.query ?? {}).filter(
      (entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== "",
    );
    const query = params.length ? `?${new URLSearchParams(params).toString()}` : "";
    return `${this.baseUrl}${call.path}${query}`;
  }

  /**
   * Send a call, retrying as its policy allows; the response (status < 400, or one the call accepts), whose body
   * is not read yet. Throws the ApiError of a refusal, ConnectionFailed when no answer came, or the signal's
   * reason when it aborted.
   */
  async send(call: Call, signal?: AbortSignal): Promise<Response> {
    const retryable = call.retry ?? IDEMPOTENT_METHODS.has(call.method);
    const url = this.url(call);
    for (let retryNumber = 1; ; retryNumber++) {
      throwIfAborted(signal);
      const response = await this.attempt(call, url, retryNumber, retryable, signal);
      if (response !== null) {
        return response;
      }
    }
  }

  /** One try: the response, or null after waiting for the next try; throws when there is none. */
  private async attempt(
    call: Call,
    url: string,
    retryNumber: number,
    retryable: boolean,
    signal: AbortSignal | undefined,
  ): Promise<Response | null> {
    const headers: Record<string, string> = { ...this.headers, ...this.authorization(), ...(call.headers ?? {}) };
    const init: RequestInit = { method: call.method, headers };
    if (call.body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(call.body);
    }
    if (signal !== undefined) {
      init.signal = signal;
    }
    let response: Response;
    try {
      response = await this.fetchFn(url, init);
    } catch (error) {
      throwIfAborted(signal);
      const delayMs = retryDelayMs(this.retries, retryable, retryNumber, null, null);
      if (delayMs === null) {
        throw new ConnectionFailed(`${call.method} ${url}: ${describe(error)}`, { cause: error });
      }
      await sleep(delayMs, signal);
      return null;
    }
    if (response.status < 400 || (call.accept ?? []).includes(response.status)) {
      return response;
    }
    let body: string;
    try {
      body = await response.text();
    } catch {
      throwIfAborted(signal);
      body = "";
    }
    const error = errorFromResponse(response.status, body, response.headers.get("Retry-After"));
    const delayMs = retryDelayMs(this.retries, retryable, retryNumber, response.status, error.retryAfterMs);
    if (delayMs === null) {
      throw error;
    }
    await sleep(delayMs, signal);
    return null;
  }

  /** Send a call and parse its JSON answer. */
  async json<T>(call: Call, signal?: AbortSignal): Promise<T> {
    return this.readJson<T>(call, await this.send(call, signal), signal);
  }

  /** The JSON body of a call's response; ConnectionFailed when it broke off or is not JSON. */
  async readJson<T>(call: Call, response: Response, signal?: AbortSignal): Promise<T> {
    try {
      return (await response.json()) as T;
    } catch (error) {
      throwIfAborted(signal);
      const where = `${call.method} ${this.url(call)}`;
      throw new ConnectionFailed(`${where}: the answer broke off or is not JSON: ${describe(error)}`, { cause: error });
    }
  }
}

/** A short description of a thrown value, with the cause fetch implementations hide in `cause`. */
export function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    const suffix = cause instanceof Error ? ` (${cause.message})` : "";
    return `${error.name}: ${error.message}${suffix}`;
  }
  return String(error);
}
