/** One run at a time: submit, follow its events (output, plots, result), cancel; the elapsed time while it runs. */
import { useCallback, useEffect, useRef, useState } from "react";
import { describeError, type SandboxApi } from "../lib/api";
import { OutputLog } from "../lib/outputLog";
import type { ExecuteRequest, ExecutionResult, JobStatus, Plot, ResourceSample } from "../lib/types";

export interface RunState {
  status: JobStatus | "idle";
  jobId: string | null;
  output: OutputLog;
  version: number;
  plots: Plot[];
  result: ExecutionResult | null;
  /** A refused request (the API's message), or a lost connection. */
  failure: string | null;
  startedAt: number | null;
  elapsedMs: number | null;
  /** The last live resource sample (metrics events) while the job runs. */
  live: ResourceSample | null;
  /** The worker host running the job (from its started event). */
  worker: string | null;
}

const IDLE: RunState = { status: "idle", jobId: null, output: new OutputLog(), version: 0, plots: [], result: null,
  failure: null, startedAt: null, elapsedMs: null, live: null, worker: null };

export function useRun(api: SandboxApi, onFinished: (result: ExecutionResult | null) => void) {
  const [state, setState] = useState<RunState>(IDLE);
  const abort = useRef<AbortController | null>(null);
  const finished = useRef(onFinished);
  finished.current = onFinished;

  const running = state.status === "queued" || state.status === "running";

  useEffect(() => {
    if (!running) return;
    const timer = setInterval(() => setState((s) => s.startedAt === null ? s
      : { ...s, elapsedMs: Date.now() - s.startedAt }), 100);
    return () => clearInterval(timer);
  }, [running]);

  const run = useCallback(async (request: ExecuteRequest) => {
    abort.current?.abort();
    const controller = new AbortController();
    abort.current = controller;
    const output = new OutputLog();
    setState({ ...IDLE, output, status: "queued" });
    let result: ExecutionResult | null = null;
    try {
      const jobId = await api.submit(request);
      setState((s) => ({ ...s, jobId }));
      for await (const event of api.events(jobId, controller.signal)) {
        if (event.event === "started") {
          const worker = typeof event.data.worker === "string" ? event.data.worker : null;
          setState((s) => ({ ...s, status: "running", startedAt: Date.now(), elapsedMs: 0, worker }));
        } else if (event.event === "stdout" || event.event === "stderr") {
          output.append(event.event, event.data.text);
          setState((s) => ({ ...s, version: output.version }));
        } else if (event.event === "metrics") {
          const live = event.data;
          setState((s) => ({ ...s, live }));
        } else if (event.event === "plot") {
          const plot = event.data;
          setState((s) => ({ ...s, plots: [...s.plots, plot] }));
        } else if (event.event === "result") {
          result = event.data;
          const final = result;
          // The result is authoritative: its stdout/stderr replace the streamed copy when nothing streamed.
          const log = output.lines.length === 0 && (final.stdout || final.stderr)
            ? OutputLog.of(final.stdout, final.stderr) : output;
          setState((s) => ({ ...s, status: final.status, result: final, plots: final.plots, output: log,
            version: log.version + 1, elapsedMs: final.metrics.durationMs }));
          break;
        }
      }
    } catch (error) {
      if (controller.signal.aborted) return;
      setState((s) => ({ ...s, status: "idle", failure: describeError(error) }));
    } finally {
      if (abort.current === controller) abort.current = null;
    }
    finished.current(result);
  }, [api]);

  const cancel = useCallback(async () => {
    const jobId = state.jobId;
    if (!jobId) return;
    try {
      await api.cancel(jobId);
    } catch (error) {
      setState((s) => ({ ...s, failure: `cancel failed: ${describeError(error)}` }));
    }
  }, [api, state.jobId]);

  return { state, running, run, cancel };
}
