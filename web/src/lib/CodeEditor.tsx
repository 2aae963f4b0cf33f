/**
 * A Python editor (Monaco): Ctrl/Cmd+Enter runs, findings show as markers (squiggles with hover messages).
 * Keyboard: Tab indents; Ctrl+M (Cmd+Ctrl+M on macOS) switches Tab to moving focus, as in VS Code.
 */
import { useEffect, useRef } from "react";
import { monaco } from "./monaco";
import type { Finding } from "./types";

export interface CodeEditorProps {
  value: string;
  onChange: (code: string) => void;
  /** Ctrl/Cmd+Enter. */
  onRun?: () => void;
  /** Shown as markers: errors red, warnings yellow (1-based line/col). */
  findings?: Finding[];
  /** The accessible name of the editor's text area. */
  ariaLabel?: string;
  /** CSS height, e.g. "320px". */
  height?: string;
  readOnly?: boolean;
}

const MARKER_OWNER = "penny";

export function CodeEditor({ value, onChange, onRun, findings = [], ariaLabel = "Python code", height = "320px",
  readOnly = false }: CodeEditorProps) {
  const host = useRef<HTMLDivElement>(null);
  const editor = useRef<monaco.editor.IStandaloneCodeEditor | null>(null);
  const latest = useRef({ onChange, onRun });
  latest.current = { onChange, onRun };

  useEffect(() => {
    if (!host.current) return;
    const instance = monaco.editor.create(host.current, {
      value,
      language: "python",
      ariaLabel,
      automaticLayout: true,
      minimap: { enabled: false },
      fontSize: 14,
      scrollBeyondLastLine: false,
      tabSize: 4,
      insertSpaces: true,
      readOnly,
      accessibilitySupport: "auto",
      renderValidationDecorations: "on",
      fixedOverflowWidgets: true,
    });
    instance.addCommand(monaco.KeyMod.CtrlCmd | monaco.KeyCode.Enter, () => latest.current.onRun?.());
    const subscription = instance.onDidChangeModelContent(() => latest.current.onChange(instance.getValue()));
    editor.current = instance;
    return () => {
      subscription.dispose();
      instance.getModel()?.dispose();
      instance.dispose();
      editor.current = null;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  useEffect(() => {
    const instance = editor.current;
    if (instance && instance.getValue() !== value) instance.setValue(value);
  }, [value]);

  useEffect(() => {
    editor.current?.updateOptions({ readOnly, ariaLabel });
  }, [readOnly, ariaLabel]);

  useEffect(() => {
    const model = editor.current?.getModel();
    if (!model) return;
    const lines = model.getLineCount();
    monaco.editor.setModelMarkers(model, MARKER_OWNER, findings.filter((f) => f.line).map((f) => {
      const line = Math.min(Math.max(f.line ?? 1, 1), lines);
      const start = Math.max(f.col ?? 1, 1);
      const end = model.getLineMaxColumn(line);
      return {
        severity: f.severity === "warning" ? monaco.MarkerSeverity.Warning : monaco.MarkerSeverity.Error,
        message: `${f.message} (${f.rule})`,
        startLineNumber: line, startColumn: start >= end ? 1 : start, endLineNumber: line, endColumn: end,
      };
    }));
  }, [findings, value]);

  return <div className="penny-editor" ref={host} style={{ height }} data-testid="code-editor" />;
}
