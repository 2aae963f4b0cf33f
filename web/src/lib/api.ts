/**
 * What the components need from the service, as one small interface (SandboxApi), and its HTTP implementation.
 * The playground talks to the API only through it, so the TypeScript SDK (@penny/sandbox-client) can stand
 * behind it without touching a component.
 */
import type {
  ExecuteRequest, InstallReport, JobEvent, PackageInfo, SessionInfo, Validation,
} from "./types";

export interface SandboxApi {
  /** Queue a job (POST /jobs); its id. */
  submit(request: ExecuteRequest): Promise<string>;
  /** The job's events as they arrive (GET /jobs/{id}/events), ending with `result`. */
  events(jobId: string, signal?: AbortSignal): AsyncIterable<JobEvent>;
  /** Cancel a queued or running job (DELETE /jobs/{id}); an ended job is not an error. */
  cancel(jobId: string): Promise<void>;
  validate(code: string, signal?: AbortSignal): Promise<Validation>;
  listSessions(): Promise<SessionInfo[]>;
  createSession(): Promise<SessionInfo>;
  getSession(sessionId: string): Promise<SessionInfo>;
  deleteSession(sessionId: string): Promise<void>;
  listPackages(search?: string): Promise<PackageInfo[]>;
  installPackages(sessionId: string, packages: string[]): Promise<InstallReport>;
}

/** A refused request: the API's error envelope {error: {code, message, details}} and the HTTP status. */
export class ApiRequestError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = "ApiRequestError";
  }
}

/** A failed call in words: the API's message and code, or the error itself. */
export function describeError(error: unknown): string {
  if (error instanceof ApiRequestError) return `${error.message} (${error.code})`;
  return error instanceof Error ? error.message : String(error);
}

/** Split an SSE byte stream into events (`id:`, `event:`, one `data:` line of JSON; `:` lines are keep-alives). */
export async function* parseSse(body: ReadableStream<Uint8Array>): AsyncGenerator<JobEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
      let end: number;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const fields: Record<string, string> = {};
        for (const line of block.split("\n")) {
          if (line === "" || line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const name = colon < 0 ? line : line.slice(0, colon);
          const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          fields[name] = name in fields && name === "data" ? `${fields[name]}\n${text}` : text;
        }
        if (fields.event && fields.data !== undefined) {
          yield { id: fields.id ?? "", event: fields.event, data: JSON.parse(fields.data) } as JobEvent;
        }
      }
    }
  } finally {
    reader.releaseLock();
  }
}

/** SandboxApi over fetch; `apiKey()` is read on every request (sent as a bearer token when set). */
export class HttpSandboxApi implements SandboxApi {
  constructor(
    private readonly baseUrl: string = "",
    private readonly apiKey: () => string | undefined = () => undefined,
  ) {}

  private headers(json: boolean): Headers {
    const headers = new Headers();
    if (json) headers.set("Content-Type", "application/json");
    const key = this.apiKey();
    if (key) headers.set("Authorization", `Bearer ${key}`);
    return headers;
  }

  private async request(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<Response> {
    const response = await fetch(`${this.baseUrl}/api/v1${path}`, {
      method, signal, headers: this.headers(body !== undefined),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!response.ok) {
      let envelope: { error?: { code?: string; message?: string; details?: Record<string, unknown> } } = {};
      try { envelope = await response.json(); } catch { /* not JSON */ }
      const error = envelope.error ?? {};
      throw new ApiRequestError(response.status, error.code ?? `http_${response.status}`,
        error.message ?? response.statusText, error.details ?? {});
    }
    return response;
  }

  private async json<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    return (await this.request(method, path, body, signal)).json() as Promise<T>;
  }

  async submit(request: ExecuteRequest): Promise<string> {
    const body: Record<string, unknown> = { code: request.code };
    if (request.sessionId) body.sessionId = request.sessionId;
    if (request.timeout) body.timeout = request.timeout;
    if (request.packages?.length) body.packages = request.packages;
    return (await this.json<{ jobId: string }>("POST", "/jobs", body)).jobId;
  }

  async *events(jobId: string, signal?: AbortSignal): AsyncGenerator<JobEvent> {
    const response = await this.request("GET", `/jobs/${encodeURIComponent(jobId)}/events`, undefined, signal);
    if (!response.body) throw new Error("the event stream has no body");
    yield* parseSse(response.body);
  }

  async cancel(jobId: string): Promise<void> {
    try {
      await this.request("DELETE", `/jobs/${encodeURIComponent(jobId)}`);
    } catch (error) {
      if (!(error instanceof ApiRequestError && error.status === 409)) throw error; // 409: it already ended
    }
  }

  validate(code: string, signal?: AbortSignal): Promise<Validation> {
    return this.json("POST", "/validate", { code, includeWarnings: true }, signal);
  }

  async listSessions(): Promise<SessionInfo[]> {
    return (await this.json<{ sessions: SessionInfo[] }>("GET", "/sessions")).sessions;
  }

  createSession(): Promise<SessionInfo> {
    return this.json("POST", "/sessions", {});
  }

  getSession(sessionId: string): Promise<SessionInfo> {
    return this.json("GET", `/sessions/${encodeURIComponent(sessionId)}`);
  }

  async deleteSession(sessionId: string): Promise<void> {
    await this.request("DELETE", `/sessions/${encodeURIComponent(sessionId)}`);
  }

  async listPackages(search?: string): Promise<PackageInfo[]> {
    const query = search ? `?search=${encodeURIComponent(search)}` : "";
    return (await this.json<{ packages: PackageInfo[] }>("GET", `/packages${query}`)).packages;
  }

  installPackages(sessionId: string, packages: string[]): Promise<InstallReport> {
    return this.json("POST", "/packages/install", { sessionId, packages });
  }
}
