/**
 * The request and answer shapes of the PENNY Sandbox API v1 (JSON, camelCase keys, times in milliseconds).
 *
 * They are the types generated from the service's OpenAPI document (`schema.ts`, by openapi-typescript), under
 * the client's names. Where the document only says "an object" (the plots, variables and findings inside an
 * ExecutionResult, a session's variables), the type here is the precise one, and `Conforms` checks at compile
 * time that it still fits what the document says: a field added, removed or changed in the spec breaks the
 * build until this file follows.
 */

import type { components, operations } from "./schema.js";

type Schemas = components["schemas"];

/** True when A has exactly B's keys and every A is a B (A may be narrower inside); else false. */
type Conforms<A, B> = [keyof A] extends [keyof B]
  ? [keyof B] extends [keyof A]
    ? [A] extends [B]
      ? true
      : false
    : false
  : false;
/** Compiles only when T is true. */
type Check<T extends true> = T;

/** Where a job is: waiting, running, or how it ended. */
export type JobStatus = Schemas["Job"]["status"];

/** How a finished job ended. */
export type FinalStatus = Schemas["ExecutionResult"]["status"];

/**
 * The body of `execute`, `executeStream`, `stream` and `submit`: `code` (Python source), `timeout` (ms, at most
 * the service's MAX_EXECUTION_TIME), `variables` (JSON values set first), `sessionId`, `packages` (allowlisted,
 * installed first), `plotFormats` (default `["png"]`), `strict` (refuse with 422 when the policy check finds
 * anything).
 */
export type ExecuteRequest = Schemas["ExecuteRequest"];

/** The value of a trailing expression, as a notebook shows it. */
export type Value = Schemas["Value"];

/** The exception the user's code raised (or why the run ended); the traceback is the user's frames. */
export type ErrorInfo = Schemas["ExecutionError"];

/** A figure: png and svg are base64 in `data`, plotly is its JSON figure; sizes in pixels. */
export type Plot = Schemas["Plot"];

/** A rich `display()` output: its type, repr, and html or json when it has them. */
export type Display = Schemas["Display"];

/** What a run cost: milliseconds and bytes. */
export type ExecutionMetrics = Schemas["Metrics"];

/** A static-analysis finding: 1-based line, 0-based column. */
export type Finding = Schemas["Finding"];

/** Packages installed for a run or a session: each installed one with its version, each refused one with why. */
export type InstallReport = Schemas["InstallReport"];

/** A summary of one variable of the user's namespace (never the value itself); size in bytes. */
export interface Variable {
  type: string;
  repr: string;
  size?: number | null;
  len?: number | null;
  shape?: number[] | null;
  dtype?: string | null;
  columns?: string[] | null;
  [key: string]: unknown;
}

/** The outcome of a finished job (also when the user's code failed: `status` says how it ended). */
export interface ExecutionResult
  extends Omit<Schemas["ExecutionResult"], "plots" | "displays" | "variables" | "packages" | "findings"> {
  plots: Plot[];
  displays: Display[];
  variables: Record<string, Variable>;
  packages: InstallReport | null;
  findings: Finding[];
}
type _ExecutionResultConforms = Check<Conforms<ExecutionResult, Schemas["ExecutionResult"]>>;

/** `submit`'s answer: the job was queued. */
export type JobAccepted = Schemas["JobAccepted"];

/** Where a job is, and its result once it ended. */
export interface JobInfo extends Omit<Schemas["Job"], "result"> {
  result?: ExecutionResult | null;
}
type _JobInfoConforms = Check<Conforms<JobInfo, Schemas["Job"]>>;

/** The answer to a cancel: `cancelled`, or the status while the kill is on its way. */
export type CancelResult = Schemas["JobCancelled"];

/** The body of `sessions.create` (all optional). */
export type SessionCreateRequest = Schemas["SessionCreate"];

/** Where a session is. */
export type SessionStatus = Schemas["Session"]["status"];

/** `sessions.create`'s answer. */
export type SessionCreated = Schemas["SessionCreated"];

/** Current resource use of a session's sandbox: bytes and percent of one core (null before a sample). */
export interface SessionResources {
  memoryBytes?: number | null;
  cpuPercent?: number | null;
  diskBytes?: number | null;
  [key: string]: unknown;
}

/** A session: status, ISO 8601 times, executions so far, its variables and resource use. */
export interface SessionInfo extends Omit<Schemas["Session"], "variables" | "resources"> {
  variables: Record<string, Variable>;
  resources: SessionResources;
}
type _SessionInfoConforms = Check<Conforms<SessionInfo, Schemas["Session"]>>;

/** `sessions.setVariables`' answer: the session's variables afterwards. */
export interface SetVariablesResult {
  variables: Record<string, Variable>;
}
type _SetVariablesConforms = Check<Conforms<SetVariablesResult, Schemas["Variables"]>>;

/** The body of `validate`: `strict` counts warnings as errors. */
export type ValidateRequest = Schemas["Validate"];

/** Whether the policy check lets the code run, and what it found. */
export type ValidationReport = Schemas["Analysis"];

/** Filters of `packages`: `search` (part of a name or description), `category`. */
export type PackagesQuery = NonNullable<operations["list_packages"]["parameters"]["query"]>;

/** One package of the allowlist, with its preinstalled version if any. */
export type PackageInfo = Schemas["Package"];

/** The body of `installPackages`: `force` installs again packages installed earlier in the session. */
export type InstallRequest = Schemas["PackageInstall"];

/** The service's version and the version of the API contract. */
export type Version = Schemas["Version"];

/** The payloads of the stream's events, by event name. */
export type QueuedData = Schemas["QueuedEvent"];
export type StartedData = Schemas["StartedEvent"];
export type OutputData = Schemas["OutputEvent"];
export type ResourceSample = Schemas["ResourceSample"];
/** The SSE event names of a job's stream, as the spec lists them. */
export type EventName = Schemas["JobEvent"]["event"];

/**
 * The service's health (`GET /health`, an operation outside the API contract): `unhealthy` comes with HTTP 503
 * and is still returned, not thrown. Uptime in seconds.
 */
export interface Health {
  status: "healthy" | "degraded" | "unhealthy";
  uptime: number;
  reason?: string;
  sessions: { active: number; total: number };
  system?: { memory: number; cpu: number; disk: number };
  workers: Array<Record<string, unknown>>;
  queue?: { depth: number; maxDepth: number };
  [key: string]: unknown;
}
