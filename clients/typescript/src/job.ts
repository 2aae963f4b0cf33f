/** Job: a handle on a queued or running execution, to wait for, follow or cancel. */

import type { SandboxClient } from "./client.js";
import type { EventStream } from "./stream.js";
import type { CallOptions } from "./transport.js";
import type { CancelResult, ExecutionResult, JobInfo } from "./types.js";

/** Options of `Job.events`. */
export interface JobEventsOptions extends CallOptions {
  /** Resume after this event id (from `event.id` or `stream.lastEventId`). */
  lastEventId?: string | null;
}

/** An execution submitted with `client.submit` (or found with `client.job(id)`). */
export class Job {
  constructor(
    private readonly client: SandboxClient,
    /** The job's id. */
    readonly id: string,
  ) {}

  /** Where the job is now, and its result once it ended. */
  info(options: CallOptions = {}): Promise<JobInfo> {
    return this.client.getJob(this.id, options);
  }

  /** The job's events from the start (or after `lastEventId`), resumed if the connection drops. */
  events(options: JobEventsOptions = {}): EventStream {
    return this.client.jobEvents(this.id, options);
  }

  /** Wait until the job ended (reading its event stream, no polling); its ExecutionResult. */
  wait(options: CallOptions = {}): Promise<ExecutionResult> {
    return this.events(options).untilResult();
  }

  /** Cancel the job: a queued one never runs, a running one is killed. Conflict if it already ended otherwise. */
  cancel(options: CallOptions = {}): Promise<CancelResult> {
    return this.client.cancelJob(this.id, options);
  }
}
