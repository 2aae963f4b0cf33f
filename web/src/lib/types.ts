/** The API's shapes (README "API (v1)", api/schemas.py) as the components use them. */

export type JobStatus =
  | "queued" | "running" | "success" | "error" | "timeout" | "memory_exceeded" | "output_limit"
  | "policy_violation" | "cancelled" | "worker_lost";

/** A trailing expression's value: its repr and, for rich objects (a DataFrame), html/png/svg. */
export interface ValueInfo {
  type: string;
  repr: string;
  html?: string;
  png?: string;
  svg?: string;
}

export interface ErrorInfo {
  type: string;
  message: string;
  traceback: string[];
}

/** png/svg: base64 data; plotly: the figure's JSON ({data, layout}). width/height in pixels. */
export interface Plot {
  format: "png" | "svg" | "plotly";
  data: string | { data?: unknown[]; layout?: Record<string, unknown> };
  width?: number;
  height?: number;
}

/** One variable's summary: size in bytes; shape/dtype for arrays; shape/columns/dtypes/preview for DataFrames. */
export interface VariableInfo {
  type: string;
  repr: string;
  size?: number;
  len?: number;
  shape?: number[];
  dtype?: string;
  columns?: string[];
  dtypes?: Record<string, string> | string[];
  preview?: string;
}

export type VariableMap = Record<string, VariableInfo>;

/** A static-analysis or runtime finding; line/col 1-based where known. */
export interface Finding {
  line?: number;
  col?: number;
  rule: string;
  message: string;
  severity?: "error" | "warning";
  source?: string;
}

export interface ExecutionMetrics {
  queuedMs: number;
  durationMs: number;
  cpuMs: number;
  peakMemoryBytes: number;
  diskBytes?: number;
}

export interface ExecutionResult {
  jobId: string;
  sessionId: string | null;
  status: JobStatus;
  stdout: string;
  stderr: string;
  truncated: boolean;
  result: ValueInfo | null;
  error: ErrorInfo | null;
  plots: Plot[];
  displays: ValueInfo[];
  notes: string[];
  variables: VariableMap;
  metrics: ExecutionMetrics;
  worker: string | null;
  sessionState: "kept" | "lost" | null;
  findings: Finding[];
}

export interface ExecuteRequest {
  code: string;
  sessionId?: string | null;
  timeout?: number;
  packages?: string[];
}

/** One SSE event of a job: queued, started, stdout {text}, stderr {text}, plot, display, result. */
export type JobEvent =
  | { id: string; event: "queued" | "started"; data: Record<string, unknown> }
  | { id: string; event: "stdout" | "stderr"; data: { text: string } }
  | { id: string; event: "plot"; data: Plot }
  | { id: string; event: "display"; data: ValueInfo }
  | { id: string; event: "metrics"; data: ResourceSample }
  | { id: string; event: "result"; data: ExecutionResult };

/** A live sample of the sandbox's resource use while the job runs: ms since start, percent of one core, bytes. */
export interface ResourceSample {
  elapsedMs: number;
  cpuPercent: number | null;
  memoryBytes: number | null;
  diskBytes?: number | null;
}

export interface Validation {
  valid: boolean;
  errors: Finding[];
  warnings: Finding[];
}

export interface SessionResources {
  memoryBytes: number | null;
  cpuPercent: number | null;
  diskBytes: number | null;
}

export interface SessionInfo {
  sessionId: string;
  status?: "starting" | "ready" | "busy" | "lost" | "expired";
  createdAt?: string;
  lastUsedAt?: string;
  expiresAt?: string;
  executionCount?: number;
  variables?: VariableMap;
  packages?: string[];
  resources?: SessionResources;
  worker?: string;
}

export interface PackageInfo {
  name: string;
  version: string | null;
  category?: string;
  description?: string;
  preinstalled?: boolean;
}

export interface InstallReport {
  installed: { name: string; version: string }[];
  failed: { name: string; reason: string }[];
}
