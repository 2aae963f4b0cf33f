/**
 * A run's output in tabs: Output (stdout/stderr as they stream, ANSI colours, virtualised), Result (the
 * trailing value; rich HTML sanitised), Plots, Variables, Problems (findings, the traceback with the user's
 * lines marked), and the metrics above them (live while the job runs).
 */
import { useId, useLayoutEffect, useMemo, useRef, useState, type KeyboardEvent, type ReactNode } from "react";
import { parseAnsi } from "./ansi";
import { formatBytes, formatMs } from "./format";
import type { OutputLog } from "./outputLog";
import { PlotViewer } from "./PlotViewer";
import { sanitizeHtml } from "./sanitize";
import type { ExecutionResult, Finding, JobStatus, Plot, ResourceSample, ValueInfo, VariableMap } from "./types";
import { VariableInspector } from "./VariableInspector";

export type OutputTab = "output" | "result" | "plots" | "variables" | "problems";

export interface OutputPanelProps {
  /** idle before the first run. */
  status: JobStatus | "idle";
  output: OutputLog;
  /** Re-render marker of `output` (its version). */
  outputVersion?: number;
  result: ExecutionResult | null;
  /** Plots of the current run (streamed before the result arrives). */
  plots: Plot[];
  variables: VariableMap;
  /** Static findings of the code in the editor. */
  findings: Finding[];
  /** Milliseconds since the job started, while it runs. */
  elapsedMs?: number | null;
  /** The last live resource sample while the job runs. */
  live?: ResourceSample | null;
  /** The worker running the job, before its result names it. */
  worker?: string | null;
  tab?: OutputTab;
  onTabChange?: (tab: OutputTab) => void;
}

const LINE_HEIGHT_PX = 20;
const OVERSCAN_LINES = 20;
const TABS: { id: OutputTab; label: string }[] = [
  { id: "output", label: "Output" }, { id: "result", label: "Result" }, { id: "plots", label: "Plots" },
  { id: "variables", label: "Variables" }, { id: "problems", label: "Problems" },
];

function OutputLines({ output, version }: { output: OutputLog; version: number }) {
  const box = useRef<HTMLDivElement>(null);
  const [scroll, setScroll] = useState({ top: 0, height: 400 });
  const stick = useRef(true);
  const lines = output.lines;

  // ANSI state carries across lines: parse once per version.
  const runs = useMemo(() => {
    let state = undefined as Parameters<typeof parseAnsi>[1];
    return lines.map((line) => { const [r, s] = parseAnsi(line.text, state); state = s; return r; });
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [lines, version]);

  useLayoutEffect(() => {
    const node = box.current;
    if (node && stick.current) node.scrollTop = node.scrollHeight;
  }, [version]);

  const first = Math.max(0, Math.floor(scroll.top / LINE_HEIGHT_PX) - OVERSCAN_LINES);
  const last = Math.min(lines.length, Math.ceil((scroll.top + scroll.height) / LINE_HEIGHT_PX) + OVERSCAN_LINES);
  return (
    <div ref={box} className="penny-output" tabIndex={0} role="log" aria-live="polite" aria-label="Program output"
      onScroll={(e) => {
        const node = e.currentTarget;
        stick.current = node.scrollTop + node.clientHeight >= node.scrollHeight - LINE_HEIGHT_PX;
        setScroll({ top: node.scrollTop, height: node.clientHeight });
      }}>
      <div style={{ height: lines.length * LINE_HEIGHT_PX, position: "relative" }}>
        {lines.slice(first, last).map((line, offset) => {
          const index = first + offset;
          return (
            <div key={index} className={`penny-line penny-${line.stream}`} data-testid="output-line"
              data-stream={line.stream} style={{ top: index * LINE_HEIGHT_PX, height: LINE_HEIGHT_PX }}>
              {line.stream === "stderr" && <span className="penny-sr-only">stderr: </span>}
              {runs[index].map((run, i) => run.classes.length
                ? <span key={i} className={run.classes.join(" ")}>{run.text}</span> : run.text)}
            </div>
          );
        })}
      </div>
    </div>
  );
}

function RichValue({ value, label }: { value: ValueInfo; label: string }) {
  const html = useMemo(() => (value.html ? sanitizeHtml(value.html) : null), [value.html]);
  return (
    <section className="penny-value" aria-label={label}>
      <p className="penny-value-type">{label}: <code>{value.type}</code></p>
      {html !== null
        ? <div className="penny-html" data-testid="result-html" dangerouslySetInnerHTML={{ __html: html }} />
        : value.png ? <img alt={`${label} (image)`} src={`data:image/png;base64,${value.png}`} />
          : <pre className="penny-repr" data-testid="result-repr">{value.repr}</pre>}
    </section>
  );
}

function Traceback({ lines }: { lines: string[] }) {
  return (
    <pre className="penny-traceback" data-testid="traceback">
      {lines.flatMap((entry) => entry.replace(/\n$/, "").split("\n")).map((line, i, all) => {
        const own = line.includes('File "<cell>"');
        const source = i > 0 && all[i - 1].includes('File "<cell>"') && /^\s{4,}\S/.test(line);
        return <span key={i} className={own || source ? "penny-own-frame" : undefined}>{line}{"\n"}</span>;
      })}
    </pre>
  );
}

function Metrics({ status, result, elapsedMs, live, worker }: { status: JobStatus | "idle";
  result: ExecutionResult | null; elapsedMs?: number | null; live?: ResourceSample | null; worker?: string | null }) {
  const running = status === "queued" || status === "running";
  const m = running ? null : result?.metrics;
  const item = (term: string, value: ReactNode) => <div><dt>{term}</dt><dd>{value}</dd></div>;
  return (
    <dl className="penny-metrics" aria-label="Run metrics" data-testid="metrics">
      {item("Status", <span className={`penny-status penny-status-${status}`} data-testid="status">{status}</span>)}
      {item("Duration", running ? formatMs(elapsedMs ?? 0) : formatMs(m?.durationMs))}
      {running
        ? item("CPU now", live?.cpuPercent === null || live?.cpuPercent === undefined ? "–" : `${Math.round(live.cpuPercent)}%`)
        : item("CPU", formatMs(m?.cpuMs))}
      {running ? item("Memory now", formatBytes(live?.memoryBytes))
        : item("Peak memory", formatBytes(m?.peakMemoryBytes || null))}
      {item("Worker", (running ? worker : result?.worker) ?? "–")}
    </dl>
  );
}

export function OutputPanel(props: OutputPanelProps) {
  const { status, output, outputVersion = output.version, result, plots, variables, findings, elapsedMs } = props;
  const [ownTab, setOwnTab] = useState<OutputTab>("output");
  const tab = props.tab ?? ownTab;
  const select = (next: OutputTab) => { setOwnTab(next); props.onTabChange?.(next); };
  const base = useId();
  const tabRefs = useRef<Record<string, HTMLButtonElement | null>>({});
  const problems = [...findings, ...(result?.findings ?? [])];
  const problemCount = problems.length + (result?.error ? 1 : 0);
  const counts: Partial<Record<OutputTab, number>> = {
    plots: plots.length, variables: Object.keys(variables).length, problems: problemCount,
  };


  const onKey = (event: KeyboardEvent<HTMLDivElement>) => {
    const index = TABS.findIndex((t) => t.id === tab);
    const move = { ArrowRight: 1, ArrowLeft: -1, Home: -index, End: TABS.length - 1 - index }[event.key];
    if (move === undefined) return;
    event.preventDefault();
    const next = TABS[(index + move + TABS.length) % TABS.length].id;
    select(next);
    tabRefs.current[next]?.focus();
  };

  return (
    <section className="penny-output-panel" aria-label="Run output">
      <Metrics status={status} result={result} elapsedMs={elapsedMs} live={props.live} worker={props.worker} />
      <div role="tablist" aria-label="Output views" className="penny-tabs" onKeyDown={onKey}>
        {TABS.map((t) => (
          <button key={t.id} type="button" role="tab" id={`${base}-tab-${t.id}`} aria-controls={`${base}-panel-${t.id}`}
            aria-selected={tab === t.id} tabIndex={tab === t.id ? 0 : -1} ref={(node) => { tabRefs.current[t.id] = node; }}
            onClick={() => select(t.id)} data-testid={`tab-${t.id}`}>
            {t.label}{counts[t.id] ? <span className="penny-count"> ({counts[t.id]})</span> : null}
          </button>
        ))}
      </div>
      <div role="tabpanel" id={`${base}-panel-${tab}`} aria-labelledby={`${base}-tab-${tab}`} className="penny-tabpanel">
        {tab === "output" && (<>
          {output.lines.length === 0 && status !== "queued" && status !== "running"
            ? <p className="penny-empty">{result ? "The run printed nothing." : "No output yet. Run code with the Run button or Ctrl+Enter."}</p>
            : <OutputLines output={output} version={outputVersion} />}
          {result?.error && <p className="penny-error-line" role="alert">{result.error.type}: {result.error.message}
            {" "}(<button type="button" className="penny-link" onClick={() => select("problems")}>traceback</button>)</p>}
          {result && !["success", "error"].includes(result.status) && <p className="penny-note" data-testid="ended">
            The job ended <strong>{result.status.replace("_", " ")}</strong>
            {result.status === "timeout" ? " (it ran past its timeout)" : ""}.</p>}
          {result?.truncated && <p className="penny-note" data-testid="truncated">The output was truncated: the job
            printed more than the service keeps (OUTPUT_LIMIT_BYTES).</p>}
          {result?.notes.map((note, i) => <p key={i} className="penny-note">{note}</p>)}
        </>)}
        {tab === "result" && (
          result?.result || result?.displays.length ? (<>
            {result.displays.map((d, i) => <RichValue key={i} value={d} label={`Display ${i + 1}`} />)}
            {result.result && <RichValue value={result.result} label="Value" />}
          </>) : <p className="penny-empty">No value. A trailing expression's value shows here, as in a notebook.</p>
        )}
        {tab === "plots" && <PlotViewer plots={plots} />}
        {tab === "variables" && <VariableInspector variables={variables} />}
        {tab === "problems" && (<>
          {problemCount === 0 && <p className="penny-empty">No problems.</p>}
          {problems.length > 0 && (
            <ul className="penny-findings" data-testid="findings">
              {problems.map((f, i) => (
                <li key={i} className={`penny-finding penny-${f.severity ?? "error"}`}>
                  {f.line ? `Line ${f.line}${f.col ? `:${f.col}` : ""}: ` : ""}{f.message} <code>{f.rule}</code>
                  {f.source === "runtime" ? " (at run time)" : ""}
                </li>))}
            </ul>)}
          {result?.error && (<>
            <h3 className="penny-error-title">{result.error.type}: {result.error.message}</h3>
            <Traceback lines={result.error.traceback} />
          </>)}
        </>)}
      </div>
    </section>
  );
}
