/**
 * The typed events of a job's stream; `eventFromSSE` is the one place an SSE event's JSON is read.
 *
 * Every event carries its stream id (`id`), which is also the Last-Event-ID to resume after it, its SSE event
 * name (`type`) and its JSON payload (`data`).
 */

import { PennyClientError } from "./errors.js";
import type { ServerSentEvent } from "./sse.js";
import type {
  Display,
  EventName,
  ExecutionResult,
  OutputData,
  Plot,
  QueuedData,
  ResourceSample,
  StartedData,
} from "./types.js";

interface EventOf<T extends string, D> {
  /** The stream id (`<ms>-<seq>`), usable as Last-Event-ID. */
  id: string;
  type: T;
  data: D;
}

/** The job was accepted and waits for a worker. */
export type QueuedEvent = EventOf<"queued", QueuedData>;
/** A worker started the job. */
export type StartedEvent = EventOf<"started", StartedData>;
/** Text the code wrote to stdout (as it was flushed). */
export type StdoutEvent = EventOf<"stdout", OutputData>;
/** Text the code wrote to stderr. */
export type StderrEvent = EventOf<"stderr", OutputData>;
/** A figure the code produced. */
export type PlotEvent = EventOf<"plot", Plot>;
/** A rich `display()` output. */
export type DisplayEvent = EventOf<"display", Display>;
/** A live resource sample while the code runs: ms since start, percent of one core, bytes. */
export type MetricsEvent = EventOf<"metrics", ResourceSample>;
/** The job ended; the last event of its stream. */
export type ResultEvent = EventOf<"result", ExecutionResult>;
/** An event this client version does not know (kept, not dropped); `event` is its SSE name. */
export interface UnknownEvent {
  id: string;
  type: "unknown";
  event: string;
  data: unknown;
}

/** Any event of a job's stream; switch on `type`. */
export type SandboxEvent =
  | QueuedEvent
  | StartedEvent
  | StdoutEvent
  | StderrEvent
  | PlotEvent
  | DisplayEvent
  | MetricsEvent
  | ResultEvent
  | UnknownEvent;

/** The SSE event names this client knows. */
export const EVENT_TYPES = ["queued", "started", "stdout", "stderr", "plot", "display", "metrics", "result"] as const;
// Compiles only while EVENT_TYPES and the spec's event names are the same set.
type SameSet<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _eventTypesMatchTheSpec: SameSet<(typeof EVENT_TYPES)[number], EventName> = true;
void _eventTypesMatchTheSpec;
const KNOWN: ReadonlySet<string> = new Set(EVENT_TYPES);

/** The typed event of one SSE event. */
export function eventFromSSE(sse: ServerSentEvent): SandboxEvent {
  let data: unknown;
  try {
    data = JSON.parse(sse.data);
  } catch (error) {
    throw new PennyClientError(`event ${sse.id ?? "?"} (${sse.event}) does not carry JSON data`, { cause: error });
  }
  const id = sse.id ?? "";
  if (!KNOWN.has(sse.event)) {
    return { id, type: "unknown", event: sse.event, data };
  }
  if (typeof data !== "object" || data === null) {
    throw new PennyClientError(`event ${id} (${sse.event}) does not carry a JSON object`);
  }
  return { id, type: sse.event, data } as SandboxEvent;
}
