/** Rich HTML from user code (a DataFrame's table) made inert: no script, no event handler, no style sheet,
 * no form, no frame. The page's CSP forbids inline script as a second line. */
import DOMPurify from "dompurify";

export function sanitizeHtml(html: string): string {
  return DOMPurify.sanitize(html, {
    USE_PROFILES: { html: true },
    FORBID_TAGS: ["style", "form", "input", "button", "iframe", "object", "embed", "link", "meta", "base"],
    FORBID_ATTR: ["style", "srcset", "action", "formaction"],
  });
}
