// Debian's Chromium, headless, driven by playwright-core (which never downloads a browser of its own).
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

export const BASE_URL = process.env.PENNY_URL ?? "http://127.0.0.1:3003";
export const SCREENSHOTS = process.env.PENNY_SCREENSHOTS ?? path.resolve("../.cache/screenshots");
const EXECUTABLE = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** A fresh browser profile (its own user-data dir, removed by close()) and a page with its console errors. */
export async function openPlayground({ width = 1366, height = 900 } = {}) {
  const profile = mkdtempSync(path.join(tmpdir(), "penny-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: EXECUTABLE,
    headless: true,
    args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width, height },
  });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: BASE_URL });
  const page = context.pages()[0] ?? await context.newPage();
  const problems = [];
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(message.text());
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("dialog", (dialog) => { problems.push(`dialog: ${dialog.message()}`); void dialog.dismiss(); });
  await page.goto(BASE_URL + "/");
  await page.getByTestId("code-editor").locator(".monaco-editor").waitFor();
  const close = async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  };
  return { page, problems, close };
}

/** Replace the editor's code as a user pastes it (typed line by line, Monaco's auto-indent would add to it). */
export async function setCode(page, code) {
  await page.evaluate((text) => navigator.clipboard.writeText(text), code);
  await page.getByTestId("code-editor").locator(".view-lines").click();
  await page.keyboard.press("ControlOrMeta+A");
  await page.keyboard.press("ControlOrMeta+V");
  await page.waitForFunction((text) => localStorage.getItem("penny.playground.code") === text, code);
}

export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** The run status shown in the metrics bar (idle, queued, running, success, error, cancelled, ...). */
export const statusOf = (page) => page.getByTestId("status").textContent();

export async function waitForStatus(page, statuses, timeout = 60_000) {
  await page.waitForFunction((wanted) => wanted.includes(document.querySelector("[data-testid=status]")?.textContent ?? ""),
    statuses, { timeout });
}
