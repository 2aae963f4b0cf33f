/** A scripted fetch for unit tests: each request is answered by the next handler, and recorded. */

import type { FetchLike } from "../../src/index.js";

export interface Recorded {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: unknown;
}

export type Handler = (request: Recorded, signal: AbortSignal | undefined) => Response | Promise<Response>;

export class FakeFetch {
  readonly requests: Recorded[] = [];
  private readonly handlers: Handler[];

  constructor(handlers: Handler[]) {
    this.handlers = [...handlers];
  }

  get fetch(): FetchLike {
    return async (url: string, init: RequestInit) => {
      if (init.signal?.aborted) {
        throw init.signal.reason;
      }
      const headers = Object.fromEntries(Object.entries((init.headers ?? {}) as Record<string, string>)
        .map(([name, value]) => [name.toLowerCase(), value]));
      const request: Recorded = {
        method: init.method ?? "GET",
        url,
        headers,
        body: typeof init.body === "string" ? JSON.parse(init.body) : undefined,
      };
      this.requests.push(request);
      const handler = this.handlers.shift();
      if (handler === undefined) {
        throw new Error(`unexpected request ${request.method} ${url}`);
      }
      return handler(request, init.signal ?? undefined);
    };
  }
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Handler {
  return () => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });
}

export function envelope(status: number, code: string, headers: Record<string, string> = {}): Handler {
  return json(status, { error: { code, message: `${code} from the fake`, details: { why: code } } }, headers);
}

export function refused(): Handler {
  return () => {
    throw new TypeError("fetch failed");
  };
}

/** One SSE event as the service frames it. */
export function sse(id: string, type: string, data: unknown): string {
  return `id: ${id}\nevent: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
}

/**
 * An event-stream answer that sends `chunks` and then ends, breaks like a cut connection (`break`), or
 * stays open until the request is aborted (`hang`).
 */
export function stream(chunks: string[], ending: "end" | "break" | "hang" = "end"): Handler {
  return (_request, signal) => {
    const encoder = new TextEncoder();
    const left = [...chunks];
    // Pulled one chunk at a time: a stream errored with chunks still queued would discard them.
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        const chunk = left.shift();
        if (chunk !== undefined) {
          controller.enqueue(encoder.encode(chunk));
        } else if (ending === "end") {
          controller.close();
        } else if (ending === "break") {
          controller.error(new TypeError("terminated"));
        } else if (signal?.aborted) {
          controller.error(signal.reason);
        } else {
          return new Promise<void>((resolve) => {
            signal?.addEventListener("abort", () => {
              controller.error(signal.reason);
              resolve();
            }, { once: true });
          });
        }
        return undefined;
      },
    }, { highWaterMark: 0 });
    return new Response(body, { status: 200, headers: { "Content-Type": "text/event-stream" } });
  };
}

export const RESULT = {
  jobId: "j1",
  sessionId: null,
  status: "success",
  stdout: "0\n1\n",
  stderr: "",
  truncated: false,
  result: null,
  error: null,
  plots: [],
  displays: [],
  notes: [],
  variables: {},
  metrics: { queuedMs: 1, durationMs: 2, cpuMs: 0, peakMemoryBytes: 1, diskBytes: 0 },
  worker: "w",
  sessionState: null,
  packages: null,
  findings: [],
};
