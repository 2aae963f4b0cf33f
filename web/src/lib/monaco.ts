/**
 * Monaco, bundled (no CDN loader): the editor core, the features the playground uses, Python highlighting, and
 * its worker from this origin. editor.api alone has none of the features: each is imported here.
 */
import * as monaco from "monaco-editor/editor/editor.api";
import "monaco-editor/features/codicon/register"; // the icon font of the widgets below
import "monaco-editor/features/hover/register"; // a marker's message on hover
import "monaco-editor/features/gotoError/register"; // F8: the next problem
import "monaco-editor/features/find/register";
import "monaco-editor/features/folding/register";
import "monaco-editor/features/bracketMatching/register";
import "monaco-editor/features/comment/register";
import "monaco-editor/features/clipboard/register";
import "monaco-editor/features/contextmenu/register";
import "monaco-editor/features/cursorUndo/register";
import "monaco-editor/features/indentation/register";
import "monaco-editor/features/linesOperations/register";
import "monaco-editor/features/multicursor/register";
import "monaco-editor/features/suggest/register";
import "monaco-editor/features/wordHighlighter/register";
import "monaco-editor/features/toggleTabFocusMode/register"; // Ctrl+M: Tab moves the focus (keyboard users)
import "monaco-editor/languages/definitions/python/register";
import EditorWorker from "monaco-editor/editor/editor.worker?worker";

self.MonacoEnvironment = { getWorker: () => new EditorWorker() };

export { monaco };
