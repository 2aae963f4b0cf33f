/** Stateless or in a session: create, pick, delete sessions; the chosen session's status and resources. */
import { useId } from "react";
import { formatBytes } from "../lib/format";
import type { SessionInfo } from "../lib/types";

export interface SessionControlsProps {
  sessions: SessionInfo[];
  sessionId: string | null;
  detail: SessionInfo | null;
  busy: boolean;
  onPick: (sessionId: string | null) => void;
  onCreate: () => void;
  onDelete: () => void;
}

export function SessionControls({ sessions, sessionId, detail, busy, onPick, onCreate, onDelete }: SessionControlsProps) {
  const pickId = useId();
  const resources = detail?.resources;
  return (
    <fieldset className="penny-fieldset">
      <legend>Where it runs</legend>
      <div className="penny-row">
        <div className="penny-field">
          <label htmlFor={pickId}>Session</label>
          <select id={pickId} value={sessionId ?? ""} onChange={(e) => onPick(e.target.value || null)}
            data-testid="session-select">
            <option value="">None (stateless: a fresh sandbox per run)</option>
            {sessions.map((s) => <option key={s.sessionId} value={s.sessionId}>{s.sessionId}</option>)}
          </select>
        </div>
        <button type="button" className="penny-button" onClick={onCreate} disabled={busy}
          data-testid="session-create">New session</button>
        <button type="button" className="penny-button" onClick={onDelete} disabled={busy || !sessionId}
          data-testid="session-delete">Delete session</button>
      </div>
      {detail && (
        <p className="penny-session-info" data-testid="session-info" aria-live="polite">
          Status <strong>{detail.status ?? "–"}</strong>, {detail.executionCount ?? 0} runs, memory{" "}
          {formatBytes(resources?.memoryBytes)}, CPU {resources?.cpuPercent === null || resources?.cpuPercent === undefined ? "–" : `${resources.cpuPercent}%`}, disk{" "}
          {formatBytes(resources?.diskBytes)}{detail.worker ? `, on ${detail.worker}` : ""}
          {detail.expiresAt ? `; expires ${new Date(detail.expiresAt).toLocaleTimeString()}` : ""}
        </p>
      )}
    </fieldset>
  );
}
