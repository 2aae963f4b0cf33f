/** The playground page: the editor and run controls on the left, the output on the right (stacked when narrow). */
import { useCallback, useEffect, useId, useMemo, useState } from "react";
import { CodeEditor } from "../lib/CodeEditor";
import { describeError } from "../lib/api";
import { SdkSandboxApi } from "../lib/sdkApi";
import { OutputPanel, type OutputTab } from "../lib/OutputPanel";
import type { ExecutionResult, Finding, SessionInfo, VariableMap } from "../lib/types";
import { PackagePicker } from "./PackagePicker";
import { SessionControls } from "./SessionControls";
import { saveApiKey, saveCode, savedApiKey, savedCode } from "./storage";
import { useRun } from "./useRun";

const EXAMPLE = `import time

for i in range(3):
    print("step", i)
    time.sleep(0.5)

6 * 7
`;
const VALIDATE_DELAY_MS = 400;

export function Playground() {
  const [apiKey, setApiKey] = useState(savedApiKey);
  const api = useMemo(() => new SdkSandboxApi("", () => apiKey || undefined), [apiKey]);
  const [code, setCode] = useState(() => savedCode() ?? EXAMPLE);
  const [findings, setFindings] = useState<Finding[]>([]);
  const [timeoutMs, setTimeoutMs] = useState("");
  const [sessions, setSessions] = useState<SessionInfo[]>([]);
  const [sessionId, setSessionId] = useState<string | null>(null);
  const [detail, setDetail] = useState<SessionInfo | null>(null);
  const [sessionBusy, setSessionBusy] = useState(false);
  const [message, setMessage] = useState<string | null>(null);
  const [tab, setTab] = useState<OutputTab>("output");
  const keyId = useId();
  const timeoutId = useId();

  const refreshSession = useCallback(async (id: string | null) => {
    if (!id) { setDetail(null); return; }
    try { setDetail(await api.getSession(id)); } catch (e) { setMessage(`session: ${describeError(e)}`); }
  }, [api]);

  const onFinished = useCallback((result: ExecutionResult | null) => {
    if (result?.status === "error") setTab("problems");
    void refreshSession(sessionId);
  }, [refreshSession, sessionId]);
  const { state, running, run, cancel } = useRun(api, onFinished);

  useEffect(() => { saveCode(code); }, [code]);
  useEffect(() => { saveApiKey(apiKey); }, [apiKey]);

  useEffect(() => {
    const controller = new AbortController();
    const timer = setTimeout(() => {
      if (!code.trim()) { setFindings([]); return; }
      api.validate(code, controller.signal).then((v) => setFindings([
        ...v.errors.map((f) => ({ ...f, severity: "error" as const })),
        ...v.warnings.map((f) => ({ ...f, severity: "warning" as const })),
      ])).catch(() => undefined); // a refused check (no key yet) shows nothing: the run will say why
    }, VALIDATE_DELAY_MS);
    return () => { clearTimeout(timer); controller.abort(); };
  }, [api, code]);

  const loadSessions = useCallback(async () => {
    try {
      setSessions(await api.listSessions());
      setMessage((m) => (m?.startsWith("Sessions: ") ? null : m));
    } catch (e) {
      setMessage(`Sessions: ${describeError(e)}`);
    }
  }, [api]);
  useEffect(() => { void loadSessions(); }, [loadSessions]);

  const pick = (id: string | null) => { setSessionId(id); void refreshSession(id); };
  const create = async () => {
    setSessionBusy(true);
    setMessage("Starting a session…");
    try {
      const session = await api.createSession();
      await loadSessions();
      setSessions((list) => list.some((s) => s.sessionId === session.sessionId) ? list : [...list, session]);
      pick(session.sessionId);
      setMessage(`Session ${session.sessionId} started.`);
    } catch (e) {
      setMessage(`The session could not be started: ${describeError(e)}`);
    } finally {
      setSessionBusy(false);
    }
  };
  const remove = async () => {
    if (!sessionId) return;
    setSessionBusy(true);
    try {
      await api.deleteSession(sessionId);
      setMessage(`Session ${sessionId} deleted.`);
      pick(null);
      await loadSessions();
    } catch (e) {
      setMessage(`The session could not be deleted: ${describeError(e)}`);
    } finally {
      setSessionBusy(false);
    }
  };

  const start = () => {
    if (running || !code.trim()) return;
    const timeout = Number(timeoutMs);
    setTab((t) => (t === "problems" ? "output" : t));
    void run({ code, sessionId, timeout: timeoutMs && timeout > 0 ? Math.round(timeout) : undefined });
  };

  const variables: VariableMap = sessionId ? (detail?.variables ?? state.result?.variables ?? {})
    : (state.result?.variables ?? {});
  const errors = findings.filter((f) => f.severity === "error");

  return (
    <div className="penny-app">
      <header className="penny-header">
        <h1>PENNY Sandbox <span className="penny-muted">playground</span></h1>
        <div className="penny-field penny-key">
          <label htmlFor={keyId}>API key (if the service requires one)</label>
          <input id={keyId} type="password" autoComplete="off" value={apiKey} onChange={(e) => setApiKey(e.target.value)}
            placeholder="none" />
        </div>
      </header>
      <main className="penny-main">
        <section className="penny-left" aria-label="Code">
          <SessionControls sessions={sessions} sessionId={sessionId} detail={detail} busy={sessionBusy || running}
            onPick={pick} onCreate={create} onDelete={remove} />
          <div className="penny-row penny-run-row">
            <button type="button" className="penny-button penny-primary" onClick={start} disabled={running}
              data-testid="run" aria-keyshortcuts="Control+Enter Meta+Enter">Run <kbd>Ctrl+Enter</kbd></button>
            <button type="button" className="penny-button" onClick={() => void cancel()} disabled={!running}
              data-testid="cancel">Cancel</button>
            <div className="penny-field penny-inline">
              <label htmlFor={timeoutId}>Timeout (ms)</label>
              <input id={timeoutId} type="number" min={1} step={1000} inputMode="numeric" value={timeoutMs}
                placeholder="service maximum" onChange={(e) => setTimeoutMs(e.target.value)} />
            </div>
          </div>
          <CodeEditor value={code} onChange={setCode} onRun={start} findings={findings}
            ariaLabel="Python code. Ctrl+Enter runs it; Ctrl+M makes Tab move the focus." />
          <p className="penny-check" role="status" data-testid="validation">
            {errors.length === 0
              ? (findings.length ? `${findings.length} warning(s): ${findings.map((f) => f.message).join("; ")}` : "No problems found by the static check.")
              : `${errors.length} problem(s): ${errors.map((f) => `line ${f.line}: ${f.message}`).join("; ")}`}
          </p>
          <PackagePicker api={api} sessionId={sessionId} onInstalled={(m) => { setMessage(m); void refreshSession(sessionId); }} />
          {(message || state.failure) && (
            <p className={state.failure ? "penny-alert" : "penny-message"} role={state.failure ? "alert" : "status"}
              data-testid="message">{state.failure ?? message}</p>
          )}
        </section>
        <section className="penny-right" aria-label="Output">
          <OutputPanel status={state.status} output={state.output} outputVersion={state.version} result={state.result}
            plots={state.plots} variables={variables} findings={findings} elapsedMs={state.elapsedMs} live={state.live} worker={state.worker}
            tab={tab} onTabChange={setTab} />
        </section>
      </main>
    </div>
  );
}
