/** ANSI SGR colour codes in program output -> styled runs; every other escape sequence is dropped. */

export interface AnsiRun {
  text: string;
  /** A CSS class per attribute: ansi-bold, ansi-fg-<0..15>, ansi-bg-<0..15>. */
  classes: string[];
}

// CSI sequences (colour and cursor) and OSC sequences (titles, links).
const ESCAPE = /\x1b\[([0-9;?]*)([A-Za-z])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]/g;

interface State { bold: boolean; fg: number | null; bg: number | null }

function apply(state: State, params: string): State {
  const codes = params === "" ? [0] : params.split(";").map((p) => Number(p) || 0);
  let next = { ...state };
  for (let i = 0; i < codes.length; i++) {
    const code = codes[i];
    if (code === 0) next = { bold: false, fg: null, bg: null };
    else if (code === 1) next.bold = true;
    else if (code === 22) next.bold = false;
    else if (code >= 30 && code <= 37) next.fg = code - 30;
    else if (code >= 90 && code <= 97) next.fg = code - 90 + 8;
    else if (code === 39) next.fg = null;
    else if (code >= 40 && code <= 47) next.bg = code - 40;
    else if (code >= 100 && code <= 107) next.bg = code - 100 + 8;
    else if (code === 49) next.bg = null;
    else if ((code === 38 || code === 48) && codes[i + 1] === 5) i += 2; // 256 colours: not rendered
    else if ((code === 38 || code === 48) && codes[i + 1] === 2) i += 4; // true colour: not rendered
  }
  return next;
}

/** Split one line of output into runs; the state carries over lines (returned for the next call). */
export function parseAnsi(line: string, state: State = { bold: false, fg: null, bg: null }): [AnsiRun[], State] {
  const runs: AnsiRun[] = [];
  let last = 0;
  const classes = (s: State) => [
    ...(s.bold ? ["ansi-bold"] : []),
    ...(s.fg !== null ? [`ansi-fg-${s.fg}`] : []),
    ...(s.bg !== null ? [`ansi-bg-${s.bg}`] : []),
  ];
  for (const match of line.matchAll(ESCAPE)) {
    if (match.index > last) runs.push({ text: line.slice(last, match.index), classes: classes(state) });
    if (match[2] === "m") state = apply(state, match[1]);
    last = match.index + match[0].length;
  }
  if (last < line.length) runs.push({ text: line.slice(last), classes: classes(state) });
  return [runs, state];
}

/** The text without any escape sequence. */
export function stripAnsi(text: string): string {
  return text.replace(ESCAPE, "");
}
