/** The streamed output of one run as lines, appended in place as events arrive (large outputs stay cheap). */

export type Stream = "stdout" | "stderr";

export interface OutputLine {
  stream: Stream;
  text: string;
}

export class OutputLog {
  readonly lines: OutputLine[] = [];
  /** Whether the last line is still open (its newline has not arrived). */
  private open = false;
  /** Bumped on every append: a cheap change marker for React. */
  version = 0;

  append(stream: Stream, text: string): void {
    if (!text) return;
    const parts = text.split("\n");
    parts.forEach((part, index) => {
      const last = this.lines[this.lines.length - 1];
      if (index === 0 && this.open && last && last.stream === stream) {
        last.text += part;
      } else if (index < parts.length - 1 || part !== "") {
        this.lines.push({ stream, text: part });
      }
    });
    this.open = !text.endsWith("\n");
    this.version++;
  }

  /** Replace everything with a finished result's stdout and stderr (when no event streamed them). */
  static of(stdout: string, stderr: string): OutputLog {
    const log = new OutputLog();
    log.append("stdout", stdout);
    if (stdout && !stdout.endsWith("\n")) log.append("stdout", "\n");
    log.append("stderr", stderr);
    return log;
  }
}
