/**
 * A small HTTP proxy in front of the real service that can break things on purpose: cut an event stream's TCP
 * connection right after a chosen event, or answer one request with a 503 before the service sees it.
 */

import http from "node:http";
import type { AddressInfo } from "node:net";

/** What the proxy saw of one request. */
export interface Seen {
  method: string;
  path: string;
  lastEventId: string | undefined;
  authorization: string | undefined;
}

export interface ProxyPlan {
  /** Cut the first `cuts` event streams right after their first event of this SSE name (default stdout). */
  cutAfter?: string;
  cuts?: number;
  /** Answer the first `unavailable` requests whose path ends with `unavailablePath` with 503 + Retry-After: 1. */
  unavailable?: number;
  unavailablePath?: string;
  /** Called after each 503 is sent. */
  onRefused?: () => void;
}

export class BreakingProxy {
  readonly seen: Seen[] = [];
  /** How many streams were cut. */
  cut = 0;
  /** How many 503s were sent. */
  refused = 0;
  private server: http.Server | null = null;

  constructor(
    private readonly target: string,
    private readonly plan: ProxyPlan,
  ) {}

  /** Start listening on a free loopback port; the proxy's base URL. */
  async start(): Promise<string> {
    const server = http.createServer((req, res) => this.handle(req, res));
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (server === null) {
      return;
    }
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** The requests made to paths ending with `suffix`. */
  requests(suffix: string): Seen[] {
    return this.seen.filter((seen) => seen.path.split("?")[0]?.endsWith(suffix));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = req.url ?? "/";
    this.seen.push({
      method: req.method ?? "GET",
      path,
      lastEventId: header(req, "last-event-id"),
      authorization: header(req, "authorization"),
    });
    const plan = this.plan;
    if (plan.unavailablePath && path.endsWith(plan.unavailablePath) && this.refused < (plan.unavailable ?? 0)) {
      this.refused += 1;
      req.resume();
      res.writeHead(503, { "Content-Type": "application/json", "Retry-After": "1" });
      res.end(JSON.stringify({ error: { code: "unavailable", message: "refused by the test proxy", details: {} } }));
      plan.onRefused?.();
      return;
    }
    const url = new URL(path, this.target);
    const upstream = http.request(url, { method: req.method, headers: { ...req.headers, host: url.host } }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      const isStream = String(answer.headers["content-type"] ?? "").startsWith("text/event-stream");
      if (!isStream || this.cut >= (plan.cuts ?? 0)) {
        answer.pipe(res);
        return;
      }
      const marker = `event: ${plan.cutAfter ?? "stdout"}\n`;
      let buffered = "";
      answer.setEncoding("utf8");
      answer.on("data", (chunk: string) => {
        buffered += chunk;
        const start = buffered.indexOf(marker);
        const end = start >= 0 ? buffered.indexOf("\n\n", start) : -1;
        if (end < 0) {
          return;
        }
        this.cut += 1;
        answer.destroy();
        // Everything up to the end of that event reaches the client, then the TCP connection goes away
        // without the chunked body's terminator: the client sees a connection that broke mid-stream.
        res.write(buffered.slice(0, end + 2), () => res.socket?.destroy());
        buffered = "";
      });
      answer.on("end", () => {
        if (buffered) {
          res.end(buffered);
        }
      });
    });
    upstream.on("error", () => res.socket?.destroy());
    req.pipe(upstream);
  }
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
