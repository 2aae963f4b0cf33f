/**
 * The request and answer shapes of the PENNY Sandbox API v1 (JSON, camelCase keys, times in milliseconds).
 *
 * These are the public names of the client. They follow the service's OpenAPI spec; `schema.ts` holds the
 * types generated from it and `spec-check.ts` fails the build when the two stop agreeing.
 */

/** How a finished job ended. */
export type FinalStatus =
  | "success"
  | "error"
  | "timeout"
  | "memory_exceeded"
  | "output_limit"
  | "policy_violation"
  | "cancelled"
  | "worker_lost";

/** Where a job is: waiting, running, or how it ended. */
export type JobStatus = "queued" | "running" | FinalStatus;

/** The body of `execute`, `executeStream`, `stream` and `submit`. */
export interface ExecuteRequest {
  /** Python source to run. */
  code: string;
  /** Run-time limit in milliseconds (at most the service's MAX_EXECUTION_TIME; default its own). */
  timeout?: number;
  /** JSON values set as variables before the code runs (names are Python identifiers). */
  variables?: Record<string, unknown>;
  /** Run in this session (its state persists between runs). */
  sessionId?: string | null;
  /** Allowlisted packages to install first (`name` or `name==version`). */
  packages?: string[] | null;
  /** Formats matplotlib figures are captured in (default `["png"]`). */
  plotFormats?: Array<"png" | "svg">;
  /** Refuse the code (422) when the static policy check finds anything. */
  strict?: boolean;
}

/** The value of a trailing expression, as a notebook shows it. */
export interface Value {
  type: string;
  repr: string;
  [key: string]: unknown;
}

/** The exception the user's code raised (or why the run ended); the traceback is the user's frames. */
export interface ErrorInfo {
  type: string;
  message: string;
  traceback: string[];
}

/** A figure: png and svg are base64 in `data`, plotly is its JSON figure; sizes in pixels. */
export interface Plot {
  format: "png" | "svg" | "plotly" | string;
  data: unknown;
  width?: number | null;
  height?: number | null;
  [key: string]: unknown;
}

/** A rich `display()` output: one or more representations by kind (png, svg, html, ...). */
export type Display = Record<string, unknown>;

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

/** What a run cost: milliseconds and bytes. */
export interface ExecutionMetrics {
  queuedMs: number;
  durationMs: number;
  cpuMs: number;
  peakMemoryBytes: number;
  diskBytes: number;
}

/** A static-analysis finding: 1-based line, 0-based column. */
export interface Finding {
  line: number;
  col: number;
  rule: string;
  message: string;
}

/** Packages installed for a run: each installed one with its version, each refused one with why. */
export interface InstallReport {
  installed: Array<{ name: string; version: string }>;
  failed: Array<{ name: string; reason: string }>;
}

/** The outcome of a finished job (also when the user's code failed: `status` says how it ended). */
export interface ExecutionResult {
  jobId: string;
  sessionId: string | null;
  status: FinalStatus;
  stdout: string;
  stderr: string;
  /** The output went past the service's limit and was cut. */
  truncated: boolean;
  result: Value | null;
  error: ErrorInfo | null;
  plots: Plot[];
  displays: Display[];
  notes: string[];
  variables: Record<string, Variable>;
  metrics: ExecutionMetrics;
  worker: string | null;
  /** In a session: whether its state survived the run (`lost` after an OOM kill, a timeout, ...). */
  sessionState: "kept" | "lost" | null;
  packages: InstallReport | null;
  findings: Finding[];
}

/** `submit`'s answer: the job was queued. */
export interface JobAccepted {
  jobId: string;
  status: JobStatus;
}

/** Where a job is, and its result once it ended. */
export interface JobInfo {
  jobId: string;
  status: JobStatus;
  worker?: string | null;
  result?: ExecutionResult | null;
}

/** The answer to a cancel: `cancelled`, or the status when the job had already ended as cancelled. */
export interface CancelResult {
  jobId: string;
  status: JobStatus;
  cancelRequested?: boolean;
}

/** The body of `sessions.create` (all optional). */
export interface SessionCreateRequest {
  packages?: string[] | null;
  variables?: Record<string, unknown>;
}

/** Where a session is. */
export type SessionStatus = "starting" | "ready" | "busy" | "lost" | "expired";

/** `sessions.create`'s answer. */
export interface SessionCreated {
  sessionId: string;
  status: SessionStatus;
  createdAt: string;
  expiresAt: string;
  worker: string;
}

/** Current resource use of a session's sandbox: bytes and percent of one core (null before a sample). */
export interface SessionResources {
  memoryBytes?: number | null;
  cpuPercent?: number | null;
  diskBytes?: number | null;
  [key: string]: unknown;
}

/** A session: status, ISO 8601 times, executions so far, its variables and resource use. */
export interface SessionInfo {
  sessionId: string;
  status: SessionStatus;
  createdAt: string;
  lastUsedAt: string;
  expiresAt: string;
  executionCount: number;
  variables: Record<string, Variable>;
  packages: string[];
  resources: SessionResources;
  worker: string;
}

/** `sessions.setVariables`' answer: the session's variables afterwards. */
export interface SetVariablesResult {
  variables: Record<string, Variable>;
}

/** The body of `validate`. */
export interface ValidateRequest {
  code: string;
  /** Count warnings as errors. */
  strict?: boolean;
  includeWarnings?: boolean;
}

/** Whether the policy check lets the code run, and what it found. */
export interface ValidationReport {
  valid: boolean;
  errors: Finding[];
  warnings: Finding[];
}

/** Filters of `packages`. */
export interface PackagesQuery {
  /** Part of a package's name or description. */
  search?: string;
  category?: string;
}

/** One package of the allowlist, with its preinstalled version if any. */
export interface PackageInfo {
  name: string;
  category: string;
  description: string;
  allowedVersions?: string;
  version?: string | null;
  preinstalled?: boolean;
  [key: string]: unknown;
}

/** The body of `installPackages`. */
export interface InstallRequest {
  sessionId: string;
  packages: string[];
  /** Install again packages installed earlier in the session. */
  force?: boolean;
}

/** The service's health: `unhealthy` comes with HTTP 503 and is still returned, not thrown. */
export interface Health {
  status: "healthy" | "degraded" | "unhealthy";
  /** Seconds since the API started. */
  uptime: number;
  reason?: string;
  sessions: { active: number; total: number };
  system?: { memory: number; cpu: number; disk: number };
  workers: Array<Record<string, unknown>>;
  queue?: { depth: number; maxDepth: number };
  [key: string]: unknown;
}
