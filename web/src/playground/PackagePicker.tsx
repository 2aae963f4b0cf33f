/** The allowlist (GET /packages, searchable) and installing the chosen packages into the session. */
import { useEffect, useId, useState } from "react";
import { describeError, type SandboxApi } from "../lib/api";
import type { PackageInfo } from "../lib/types";

export interface PackagePickerProps {
  api: SandboxApi;
  sessionId: string | null;
  /** Called after an installation with the service's report, in words. */
  onInstalled: (message: string) => void;
}

export function PackagePicker({ api, sessionId, onInstalled }: PackagePickerProps) {
  const [search, setSearch] = useState("");
  const [packages, setPackages] = useState<PackageInfo[]>([]);
  const [chosen, setChosen] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const searchId = useId();

  useEffect(() => {
    const timer = setTimeout(() => {
      api.listPackages(search.trim() || undefined).then((list) => { setPackages(list); setError(null); })
        .catch((e: unknown) => setError(describeError(e)));
    }, 250);
    return () => clearTimeout(timer);
  }, [api, search]);

  const install = async () => {
    if (!sessionId || chosen.length === 0) return;
    setBusy(true);
    try {
      const report = await api.installPackages(sessionId, chosen);
      const ok = report.installed.map((p) => `${p.name} ${p.version}`).join(", ");
      const failed = report.failed.map((p) => `${p.name} (${p.reason})`).join(", ");
      onInstalled([ok && `installed ${ok}`, failed && `failed: ${failed}`].filter(Boolean).join("; ") || "nothing to do");
      setChosen([]);
    } catch (e) {
      onInstalled(`installation refused: ${describeError(e)}`);
    } finally {
      setBusy(false);
    }
  };

  return (
    <details className="penny-packages">
      <summary>Packages</summary>
      <div className="penny-field">
        <label htmlFor={searchId}>Search the allowed packages</label>
        <input id={searchId} type="search" value={search} onChange={(e) => setSearch(e.target.value)} />
      </div>
      {error && <p role="alert">{error}</p>}
      <ul className="penny-package-list" aria-label="Allowed packages">
        {packages.slice(0, 200).map((p) => (
          <li key={p.name}>
            <label>
              <input type="checkbox" checked={chosen.includes(p.name)} disabled={!!p.preinstalled}
                onChange={(e) => setChosen((c) => e.target.checked ? [...c, p.name] : c.filter((n) => n !== p.name))} />
              {" "}<strong>{p.name}</strong>{p.version ? ` ${p.version}` : ""}
              {p.preinstalled ? " (preinstalled)" : ""}{p.category ? ` · ${p.category}` : ""}
              {p.description ? <span className="penny-muted"> — {p.description}</span> : null}
            </label>
          </li>))}
      </ul>
      <button type="button" className="penny-button" onClick={install} disabled={!sessionId || chosen.length === 0 || busy}>
        {busy ? "Installing…" : sessionId ? `Install ${chosen.length || ""} into the session` : "Install (pick a session first)"}
      </button>
    </details>
  );
}
