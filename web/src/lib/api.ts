/**
 * What the playground needs from the service, as one small interface (SandboxApi); SdkSandboxApi implements it
 * on the TypeScript SDK (@penny/sandbox-client). An app embedding the components may bring its own.
 */
import { ApiError } from "@penny/sandbox-client";
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

/** A failed call in words: the API's message and error code (the SDK's ApiError), or the error itself. */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) return `${error.message} (${error.code})`;
  return error instanceof Error ? error.message : String(error);
}
