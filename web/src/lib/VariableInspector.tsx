/** A session's variables as a table: sortable by any column, filtered by name or type; a DataFrame's columns
 * and head under its row. */
import { useId, useMemo, useState } from "react";
import { formatBytes, formatShape } from "./format";
import type { VariableInfo, VariableMap } from "./types";

export interface VariableInspectorProps {
  variables: VariableMap;
}

type SortKey = "name" | "type" | "size";

function detail(info: VariableInfo): string {
  const parts: string[] = [];
  if (info.shape) parts.push(`shape ${formatShape(info.shape)}`);
  if (info.dtype) parts.push(`dtype ${info.dtype}`);
  if (info.len !== undefined && !info.shape) parts.push(`len ${info.len}`);
  return parts.join(", ");
}

export function VariableInspector({ variables }: VariableInspectorProps) {
  const [filter, setFilter] = useState("");
  const [sort, setSort] = useState<{ key: SortKey; ascending: boolean }>({ key: "name", ascending: true });
  const filterId = useId();
  const rows = useMemo(() => {
    const needle = filter.trim().toLowerCase();
    const entries = Object.entries(variables).filter(([name, info]) =>
      !needle || name.toLowerCase().includes(needle) || info.type.toLowerCase().includes(needle));
    const value = ([name, info]: [string, VariableInfo]) =>
      sort.key === "name" ? name : sort.key === "type" ? info.type : (info.size ?? -1);
    entries.sort((a, b) => {
      const [x, y] = [value(a), value(b)];
      const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
      return sort.ascending ? order : -order;
    });
    return entries;
  }, [variables, filter, sort]);

  const header = (key: SortKey, label: string) => {
    const active = sort.key === key;
    return (
      <th scope="col" aria-sort={active ? (sort.ascending ? "ascending" : "descending") : "none"}>
        <button type="button" className="penny-sort"
          onClick={() => setSort({ key, ascending: active ? !sort.ascending : true })}>
          {label}{active ? (sort.ascending ? " ▲" : " ▼") : ""}
        </button>
      </th>
    );
  };

  const total = Object.keys(variables).length;
  return (
    <div className="penny-variables">
      <div className="penny-field">
        <label htmlFor={filterId}>Filter variables</label>
        <input id={filterId} type="search" value={filter} placeholder="name or type"
          onChange={(e) => setFilter(e.target.value)} />
      </div>
      {total === 0 ? <p className="penny-empty">No variables yet. Run code in a session to see its variables.</p> : (
        <div className="penny-table-wrap">
          <table className="penny-table" data-testid="variables-table">
            <caption className="penny-sr-only">Variables ({rows.length} of {total})</caption>
            <thead>
              <tr>{header("name", "Name")}{header("type", "Type")}{header("size", "Size")}<th scope="col">Shape / details</th>
                <th scope="col">Value</th></tr>
            </thead>
            <tbody>
              {rows.map(([name, info]) => (
                <tr key={name} data-variable={name}>
                  <th scope="row"><code>{name}</code></th>
                  <td><code>{info.type}</code></td>
                  <td>{formatBytes(info.size)}</td>
                  <td>{detail(info)}{info.columns && (
                    <div className="penny-columns">columns: {info.columns.join(", ")}</div>)}</td>
                  <td>{info.preview ? (
                    <details><summary>preview</summary><pre>{info.preview}</pre></details>
                  ) : <code className="penny-repr">{info.repr}</code>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
