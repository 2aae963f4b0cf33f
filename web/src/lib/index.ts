/** @penny/sandbox-ui: the PENNY Sandbox components, for the playground and any app that embeds them. */
export { CodeEditor, type CodeEditorProps } from "./CodeEditor";
export { OutputPanel, type OutputPanelProps, type OutputTab } from "./OutputPanel";
export { VariableInspector, type VariableInspectorProps } from "./VariableInspector";
export { PlotViewer, type PlotViewerProps } from "./PlotViewer";
export { OutputLog, type OutputLine, type Stream } from "./outputLog";
export { describeError, type SandboxApi } from "./api";
export { SdkSandboxApi } from "./sdkApi";
export { parseAnsi, stripAnsi } from "./ansi";
export { sanitizeHtml } from "./sanitize";
export * from "./types";
import "./styles.css";
