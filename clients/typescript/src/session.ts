/** Session: a live interpreter whose variables persist between runs. */

import type { SandboxClient } from "./client.js";
import { NotFound } from "./errors.js";
import type { SandboxEvent } from "./events.js";
import type { Job } from "./job.js";
import type { EventStream } from "./stream.js";
import type { CallOptions } from "./transport.js";
import type {
  ExecuteRequest,
  ExecutionResult,
  InstallReport,
  SessionCreated,
  SessionInfo,
  Variable,
} from "./types.js";

/** What to run in a session: the code alone, or a request without its sessionId. */
export type SessionRun = string | Omit<ExecuteRequest, "sessionId">;

/** A session of the service: `const s = await client.sessions.create(); await s.execute("x = 1")`. */
export class Session {
  constructor(
    private readonly client: SandboxClient,
    /** The session's id. */
    readonly id: string,
    /** The creation's answer (null for a handle made with `client.session(id)`). */
    readonly created: SessionCreated | null = null,
  ) {}

  private request(run: SessionRun): ExecuteRequest {
    return typeof run === "string" ? { code: run, sessionId: this.id } : { ...run, sessionId: this.id };
  }

  /** Run code in the session; its ExecutionResult. */
  execute(run: SessionRun, options: CallOptions = {}): Promise<ExecutionResult> {
    return this.client.execute(this.request(run), options);
  }

  /** Run code in the session, passing each event to onEvent; the ExecutionResult. */
  executeStream(
    run: SessionRun,
    onEvent: (event: SandboxEvent) => unknown,
    options: CallOptions = {},
  ): Promise<ExecutionResult> {
    return this.client.executeStream(this.request(run), onEvent, options);
  }

  /** Run code in the session; its events as an async iterator. */
  stream(run: SessionRun, options: CallOptions = {}): EventStream {
    return this.client.stream(this.request(run), options);
  }

  /** Queue code in the session (it runs after the session's earlier jobs); a Job. */
  submit(run: SessionRun, options: CallOptions = {}): Promise<Job> {
    return this.client.submit(this.request(run), options);
  }

  /** The session's status, times, execution count, variables and resource use now. */
  info(options: CallOptions = {}): Promise<SessionInfo> {
    return this.client.sessions.get(this.id, options);
  }

  /** Set JSON values in the namespace, in order with the session's runs; its variables afterwards. */
  setVariables(variables: Record<string, unknown>, options: CallOptions = {}): Promise<Record<string, Variable>> {
    return this.client.sessions.setVariables(this.id, variables, options);
  }

  /** Install allowlisted packages into the session. */
  install(packages: string[], options: CallOptions & { force?: boolean } = {}): Promise<InstallReport> {
    const { force, ...call } = options;
    return this.client.installPackages({ sessionId: this.id, packages, force: force ?? false }, call);
  }

  /** Delete the session; its sandbox is destroyed at once. NotFound if it is already gone. */
  delete(options: CallOptions = {}): Promise<void> {
    return this.client.sessions.delete(this.id, options);
  }

  /** Delete the session if it still exists (NotFound is ignored). */
  async close(options: CallOptions = {}): Promise<void> {
    try {
      await this.delete(options);
    } catch (error) {
      if (!(error instanceof NotFound)) {
        throw error;
      }
    }
  }
}
