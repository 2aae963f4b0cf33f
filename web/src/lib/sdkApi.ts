/**
 * SandboxApi on the TypeScript SDK (@penny/sandbox-client): its transport (bearer key asked before every
 * request, retries of idempotent calls), its typed errors and its event stream (resumed after a dropped
 * connection with Last-Event-ID). The components keep their own view types: the SDK's answers are the same
 * JSON (the OpenAPI spec's shapes), cast at this one boundary.
 */
import { Conflict, SandboxClient } from "@penny/sandbox-client";
import type { SandboxApi } from "./api";
import type {
  ExecuteRequest, InstallReport, JobEvent, PackageInfo, SessionInfo, Validation,
} from "./types";

export class SdkSandboxApi implements SandboxApi {
  readonly client: SandboxClient;

  /** baseUrl "" is the page's own origin; apiKey() is asked before every request (none: no header). */
  constructor(baseUrl: string = "", apiKey: () => string | undefined = () => undefined) {
    this.client = new SandboxClient({ baseUrl, apiKey: () => apiKey() ?? null });
  }

  async submit(request: ExecuteRequest): Promise<string> {
    const body: Record<string, unknown> = { code: request.code };
    if (request.sessionId) body.sessionId = request.sessionId;
    if (request.timeout) body.timeout = request.timeout;
    if (request.packages?.length) body.packages = request.packages;
    const job = await this.client.submit(body as Parameters<SandboxClient["submit"]>[0]);
    return job.id;
  }

  async *events(jobId: string, signal?: AbortSignal): AsyncGenerator<JobEvent> {
    for await (const event of this.client.jobEvents(jobId, { signal })) {
      if (event.type === "unknown") continue; // an event this page does not know: skipped
      yield { id: event.id, event: event.type, data: event.data } as unknown as JobEvent;
    }
  }

  async cancel(jobId: string): Promise<void> {
    try {
      await this.client.cancelJob(jobId);
    } catch (error) {
      if (!(error instanceof Conflict)) throw error; // it already ended
    }
  }

  async validate(code: string, signal?: AbortSignal): Promise<Validation> {
    return (await this.client.validate({ code, includeWarnings: true }, { signal })) as unknown as Validation;
  }

  async listSessions(): Promise<SessionInfo[]> {
    return (await this.client.sessions.list()) as unknown as SessionInfo[];
  }

  async createSession(): Promise<SessionInfo> {
    const session = await this.client.sessions.create();
    return { ...(session.created as unknown as SessionInfo), sessionId: session.id };
  }

  async getSession(sessionId: string): Promise<SessionInfo> {
    return (await this.client.sessions.get(sessionId)) as unknown as SessionInfo;
  }

  async deleteSession(sessionId: string): Promise<void> {
    await this.client.sessions.delete(sessionId);
  }

  async listPackages(search?: string): Promise<PackageInfo[]> {
    return (await this.client.packages({ search })) as unknown as PackageInfo[];
  }

  async installPackages(sessionId: string, packages: string[]): Promise<InstallReport> {
    return (await this.client.installPackages({ sessionId, packages, force: false })) as unknown as InstallReport;
  }
}
