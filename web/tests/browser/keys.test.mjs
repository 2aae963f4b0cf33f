// The playground against a stack with API keys (PENNY_URL, PENNY_API_KEY set by test_playground.py): refused
// without a key, runs with the one typed into the key field, which stays in the tab's session storage only.
import assert from "node:assert/strict";
import { test } from "node:test";
import { openPlayground, screenshot, setCode, waitForStatus } from "./browser.mjs";

const KEY = process.env.PENNY_API_KEY;

test("with API keys: refused without a key, runs with the typed one", async () => {
  assert.ok(KEY, "PENNY_API_KEY is set");
  const { page, problems, close } = await openPlayground();
  try {
    await setCode(page, "print('with a key')\n");
    await page.getByTestId("run").click();
    await page.getByRole("alert").filter({ hasText: "unauthorized" }).waitFor();
    await page.getByLabel("API key (if the service requires one)").fill(KEY);
    await page.getByTestId("run").click();
    await waitForStatus(page, ["success"]);
    await page.getByTestId("output-line").filter({ hasText: "with a key" }).waitFor();
    const stored = await page.evaluate(() => [JSON.stringify(sessionStorage), JSON.stringify(localStorage)]);
    assert.ok(stored[0].includes(KEY), "the key is in session storage");
    assert.ok(!stored[1].includes(KEY), "and not in local storage");
    await screenshot(page, "api-key");
    // The refused requests before the key was typed are the only console errors.
    assert.deepEqual(problems.filter((p) => !/status of 401/.test(p)), []);
  } catch (error) {
    await screenshot(page, "api-key-failed").catch(() => undefined);
    throw error;
  } finally {
    await close();
  }
});
