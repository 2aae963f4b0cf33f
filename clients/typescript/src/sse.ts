/**
 * An incremental Server-Sent Events parser (pure: text in, events out), per the WHATWG event-stream format.
 */

/** One dispatched event; `id` is the last event id in force when it was dispatched (null if never set). */
export interface ServerSentEvent {
  event: string;
  data: string;
  id: string | null;
  retryMs: number | null;
}

/**
 * Feed it text as it arrives (decoded with a streaming TextDecoder, so split anywhere); it returns whole events.
 *
 * Lines end in LF, CR or CRLF; `data:` lines join with LF; lines starting with ':' are comments (keepalives);
 * an event is dispatched at a blank line, and never when its data is empty (as browsers do).
 */
export class SSEParser {
  private buffer = "";
  private pendingCR = false; // the previous chunk ended in CR: a LF starting this one belongs to it
  private eventName = "";
  private data: string[] = [];
  private lastId: string | null = null;
  private retryMs: number | null = null;

  /** The events completed by this chunk of text, in order. */
  feed(text: string): ServerSentEvent[] {
    if (this.pendingCR && text.startsWith("\n")) {
      text = text.slice(1);
    }
    this.pendingCR = false;
    this.buffer += text;
    const events: ServerSentEvent[] = [];
    for (;;) {
      const end = lineEnd(this.buffer);
      if (end < 0) {
        break;
      }
      const line = this.buffer.slice(0, end);
      const terminator = this.buffer[end];
      if (terminator === "\r" && end + 1 === this.buffer.length) {
        this.pendingCR = true; // maybe the first half of CRLF: its LF may start the next chunk
        this.buffer = "";
      } else if (terminator === "\r" && this.buffer[end + 1] === "\n") {
        this.buffer = this.buffer.slice(end + 2);
      } else {
        this.buffer = this.buffer.slice(end + 1);
      }
      const event = this.line(line);
      if (event !== null) {
        events.push(event);
      }
    }
    return events;
  }

  private line(line: string): ServerSentEvent | null {
    if (line === "") {
      return this.dispatch();
    }
    if (line.startsWith(":")) {
      return null;
    }
    const colon = line.indexOf(":");
    const name = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) {
      value = value.slice(1);
    }
    if (name === "event") {
      this.eventName = value;
    } else if (name === "data") {
      this.data.push(value);
    } else if (name === "id") {
      if (!value.includes("\0")) {
        this.lastId = value;
      }
    } else if (name === "retry") {
      if (/^[0-9]+$/.test(value)) {
        this.retryMs = Number(value);
      }
    }
    return null;
  }

  private dispatch(): ServerSentEvent | null {
    const event = this.eventName || "message";
    const data = this.data;
    this.eventName = "";
    this.data = [];
    if (data.length === 0) {
      return null;
    }
    return { event, data: data.join("\n"), id: this.lastId || null, retryMs: this.retryMs };
  }
}

function lineEnd(buffer: string): number {
  const cr = buffer.indexOf("\r");
  const lf = buffer.indexOf("\n");
  if (cr < 0) {
    return lf;
  }
  if (lf < 0) {
    return cr;
  }
  return Math.min(cr, lf);
}
