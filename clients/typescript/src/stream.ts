/**
 * A job's event stream that survives dropped connections: it resumes with Last-Event-ID and never re-submits.
 *
 * StreamCursor is the pure part (which events were delivered, where to resume); EventStream drives it over fetch.
 */

import { ConnectionFailed, PennyClientError } from "./errors.js";
import { eventFromSSE, type SandboxEvent } from "./events.js";
import type { RetryPolicy } from "./retry.js";
import { SSEParser, type ServerSentEvent } from "./sse.js";
import { abortReason, type Call, childController, describe, sleep, type Transport } from "./transport.js";
import type { ExecutionResult, JobInfo } from "./types.js";

const STREAM_ID = /^([0-9]+)-([0-9]+)$/;

/** A Redis stream id as a comparable pair (ms, sequence), or null for an id of another shape. */
function position(eventId: string): [bigint, bigint] | null {
  const match = STREAM_ID.exec(eventId);
  return match ? [BigInt(match[1] as string), BigInt(match[2] as string)] : null;
}

/** Whether stream id `a` comes at or before stream id `b`. */
function atOrBefore(a: [bigint, bigint], b: [bigint, bigint]): boolean {
  return a[0] < b[0] || (a[0] === b[0] && a[1] <= b[1]);
}

/** The path of a job's event stream. */
export function jobEventsCall(jobId: string, lastEventId: string | null): Call {
  const headers: Record<string, string> = { Accept: "text/event-stream" };
  if (lastEventId) {
    headers["Last-Event-ID"] = lastEventId;
  }
  return { method: "GET", path: `/api/v1/jobs/${encodeURIComponent(jobId)}/events`, headers };
}

/** Where a job's stream stands: its job id, the last event delivered, and its result once there. */
export class StreamCursor {
  jobId: string | null;
  lastEventId: string | null;
  result: ExecutionResult | null = null;

  constructor(jobId: string | null = null, lastEventId: string | null = null) {
    this.jobId = jobId;
    this.lastEventId = lastEventId;
  }

  get done(): boolean {
    return this.result !== null;
  }

  /** The typed event to deliver, or null when it was delivered before (ids only grow on a stream). */
  accept(sse: ServerSentEvent): SandboxEvent | null {
    const eventId = sse.id ?? "";
    if (this.lastEventId !== null && eventId) {
      const seen = position(this.lastEventId);
      const current = position(eventId);
      if (seen !== null && current !== null && atOrBefore(current, seen)) {
        return null;
      }
    }
    const event = eventFromSSE(sse);
    if (eventId) {
      this.lastEventId = eventId;
    }
    if ((event.type === "queued" || event.type === "started") && event.data.jobId) {
      this.jobId = event.data.jobId;
    } else if (event.type === "result") {
      this.result = event.data;
    }
    return event;
  }

  /** The request that continues this stream after the last delivered event. */
  resumeCall(): Call {
    if (this.jobId === null) {
      throw new ConnectionFailed(
        "the stream broke before the job was queued: its job id is unknown, and the code is not re-submitted " +
          "(it may be running)",
      );
    }
    return jobEventsCall(this.jobId, this.lastEventId);
  }
}

/** How an EventStream reconnects. */
export interface StreamOptions {
  signal?: AbortSignal;
  /** Consecutive reconnects allowed without a new event in between. */
  reconnects: RetryPolicy;
  /** A connection silent this long (milliseconds; the service sends a keepalive every 15 s) is dropped and resumed. */
  idleTimeoutMs: number;
}

class IdleTimeout extends Error {
  constructor(ms: number) {
    super(`no data for ${ms} ms`);
    this.name = "IdleTimeout";
  }
}

class Closed extends Error {
  constructor() {
    super("the stream was closed");
    this.name = "Closed";
  }
}

/**
 * A job's events in order, as an async iterator (`for await (const event of stream)`); a dropped connection is
 * resumed where it broke, with no event lost or repeated. The request is sent when iteration starts.
 *
 * Break out of the loop, or call `close()`, to stop early: the connection is closed (the job goes on).
 */
export class EventStream implements AsyncIterableIterator<SandboxEvent> {
  private readonly cursor: StreamCursor;
  private readonly events: AsyncGenerator<SandboxEvent, void, undefined>;
  private readonly closer = new AbortController();

  constructor(
    private readonly transport: Transport,
    private readonly firstCall: Call,
    cursor: StreamCursor,
    private readonly options: StreamOptions,
  ) {
    this.cursor = cursor;
    this.events = this.run();
  }

  /** The job's id, once known (at once for a job's stream, from the `queued` event for a new execution). */
  get jobId(): string | null {
    return this.cursor.jobId;
  }

  /** The id of the last event delivered: resume after it with `client.job(jobId).events({lastEventId})`. */
  get lastEventId(): string | null {
    return this.cursor.lastEventId;
  }

  /** The ExecutionResult, once the `result` event was delivered. */
  get result(): ExecutionResult | null {
    return this.cursor.result;
  }

  [Symbol.asyncIterator](): EventStream {
    return this;
  }

  next(): Promise<IteratorResult<SandboxEvent>> {
    return this.events.next();
  }

  async return(): Promise<IteratorResult<SandboxEvent>> {
    this.close();
    return this.events.return(undefined);
  }

  /** Stop: the connection is closed and iteration ends (the job itself goes on; cancel it to stop it). */
  close(): void {
    this.closer.abort(new Closed());
  }

  /** Deliver each remaining event to `onEvent` (awaited when it returns a promise); the ExecutionResult. */
  async untilResult(onEvent?: (event: SandboxEvent) => unknown): Promise<ExecutionResult> {
    for await (const event of this) {
      if (onEvent) {
        await onEvent(event);
      }
    }
    if (this.cursor.result === null) {
      throw new ConnectionFailed("the stream was closed before the result");
    }
    return this.cursor.result;
  }

  /** Whether the job has ended, its result then taken from its record (GET /jobs/{id}); NotFound if expired. */
  private async endedJob(signal: AbortSignal): Promise<boolean> {
    if (this.cursor.jobId === null) {
      return false;
    }
    const info = await this.transport.json<JobInfo>(
      { method: "GET", path: `/api/v1/jobs/${encodeURIComponent(this.cursor.jobId)}` },
      signal,
    );
    if (info.result == null) {
      return false;
    }
    this.cursor.result = info.result;
    return true;
  }

  private async *run(): AsyncGenerator<SandboxEvent, void, undefined> {
    const user = this.options.signal;
    let call = this.firstCall;
    let drops = 0; // consecutive drops without a delivered event
    for (;;) {
      if (this.cursor.done) {
        return;
      }
      const { controller, dispose: unhookUser } = childController(user);
      const unhookCloser = hook(this.closer.signal, controller);
      let cause: unknown;
      let idle: ReturnType<typeof setTimeout> | undefined;
      const armIdle = (): void => {
        clearTimeout(idle);
        idle = setTimeout(() => controller.abort(new IdleTimeout(this.options.idleTimeoutMs)),
          this.options.idleTimeoutMs);
      };
      try {
        const response = await this.transport.send(call, controller.signal);
        if (response.body === null) {
          throw new ConnectionFailed("the event stream has no body");
        }
        armIdle(); // from the answer on: the wait for it may include the retries' backoff
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        const parser = new SSEParser();
        try {
          for (;;) {
            const { done, value } = await reader.read();
            if (done) {
              break;
            }
            armIdle();
            for (const sse of parser.feed(decoder.decode(value, { stream: true }))) {
              const event = this.cursor.accept(sse);
              if (event === null) {
                continue;
              }
              drops = 0;
              clearTimeout(idle); // the time the consumer takes with an event is not silence
              yield event;
              if (this.cursor.done) {
                return;
              }
              armIdle();
            }
          }
          // The service ended the stream without a result: a resume after the result event (nothing is left
          // to send), or events that expired. The job's record says which; reconnecting would not help.
          if (await this.endedJob(controller.signal)) {
            return;
          }
          cause = new ConnectionFailed("the stream ended before the result");
        } finally {
          reader.cancel().catch(() => undefined);
        }
      } catch (error) {
        if (this.closer.signal.aborted) {
          return;
        }
        if (user?.aborted) {
          throw abortReason(user);
        }
        if (error instanceof PennyClientError && !(error instanceof ConnectionFailed)) {
          throw error; // a refusal (404 for an expired job, 401, ...) or a malformed event: resuming will not help
        }
        cause = error;
      } finally {
        clearTimeout(idle);
        controller.abort(new Closed()); // closes the connection if it is still open
        unhookUser();
        unhookCloser();
      }
      drops += 1;
      if (!this.options.reconnects.allows(drops)) {
        throw new ConnectionFailed(
          `the stream of job ${this.cursor.jobId ?? "(not queued yet)"} broke ${drops} times in a row without ` +
            `progress: ${describe(cause)}`,
          { cause },
        );
      }
      if (drops > 1) {
        // The first reconnect is immediate: a proxy or a network blip cut one connection.
        await sleep(this.options.reconnects.delayMs(drops - 1), user);
      }
      call = this.cursor.resumeCall();
    }
  }
}

/** Abort `controller` when `signal` aborts; returns the unhook function. */
function hook(signal: AbortSignal, controller: AbortController): () => void {
  if (signal.aborted) {
    controller.abort(abortReason(signal));
    return () => undefined;
  }
  const onAbort = (): void => controller.abort(abortReason(signal));
  signal.addEventListener("abort", onAbort, { once: true });
  return () => signal.removeEventListener("abort", onAbort);
}
