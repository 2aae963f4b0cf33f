// The playground in a real browser against the real stack (tests/integration/test_playground.py starts it and
// sets PENNY_URL). Each test saves a screenshot under .cache/screenshots/.
import assert from "node:assert/strict";
import { test } from "node:test";
import { openPlayground, screenshot, setCode, statusOf, waitForStatus } from "./browser.mjs";

// `allowed`: console messages a scenario expects (the CSP blocking what it should), as a RegExp.
async function withPlayground(name, options, body, allowed = /^$/) {
  const { page, problems, close } = await openPlayground(options);
  try {
    await body(page);
    await screenshot(page, name);
    assert.deepEqual(problems.filter((p) => !allowed.test(p)), [], "console errors or CSP violations");
  } catch (error) {
    await screenshot(page, `${name}-failed`).catch(() => undefined);
    throw error;
  } finally {
    await close();
  }
}

test("stdout lines appear one by one while the job still runs", () => withPlayground("streaming", {}, async (page) => {
  await setCode(page, 'import time\nfor i in range(3):\n    print("line", i)\n    time.sleep(1)\n"done"\n');
  await page.getByTestId("run").click();
  const lines = page.getByTestId("output-line");
  await lines.filter({ hasText: "line 0" }).waitFor({ timeout: 60_000 });
  const firstAt = Date.now();
  assert.equal(await statusOf(page), "running", "the first line is shown while the job still runs");
  assert.equal(await lines.count(), 1);
  await screenshot(page, "streaming-running");
  await lines.filter({ hasText: "line 1" }).waitFor();
  assert.equal(await statusOf(page), "running");
  assert.ok(Date.now() - firstAt >= 500, "the second line arrives later, not with the first");
  await waitForStatus(page, ["success"]);
  assert.deepEqual(await lines.allTextContents(), ["line 0", "line 1", "line 2"]);
  await page.getByTestId("tab-result").click();
  assert.equal(await page.getByTestId("result-repr").textContent(), "'done'");
}));

test("a matplotlib plot appears as an image", () => withPlayground("matplotlib", {}, async (page) => {
  await setCode(page, "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.title('squares')\nplt.show()\n");
  await page.getByTestId("run").click();
  await waitForStatus(page, ["success"]);
  await page.getByTestId("tab-plots").click();
  const image = page.getByTestId("plot-image").locator("img").first();
  await image.waitFor();
  await page.waitForFunction((img) => img.complete, await image.elementHandle());
  const size = await image.evaluate((img) => [img.naturalWidth, img.naturalHeight]);
  assert.ok(size[0] > 0 && size[1] > 0, `natural size ${size}`);
}));

test("a plotly figure renders as an interactive chart", () => withPlayground("plotly", {}, async (page) => {
  await setCode(page, "import plotly.graph_objects as go\nfig = go.Figure(go.Scatter(x=[1, 2, 3], y=[3, 1, 2]))\nfig.show()\n");
  await page.getByTestId("run").click();
  await waitForStatus(page, ["success"]);
  await page.getByTestId("tab-plots").click();
  const chart = page.getByTestId("plot-plotly");
  await chart.locator("svg.main-svg").first().waitFor({ timeout: 30_000 });
  assert.ok(await chart.locator(".scatterlayer .trace").count() >= 1, "the trace is drawn");
}));

test("a session keeps x; the inspector lists x as int and a DataFrame with its shape", () =>
  withPlayground("session", {}, async (page) => {
    await page.getByTestId("session-create").click();
    await page.getByTestId("session-info").waitFor({ timeout: 60_000 });
    await setCode(page, "x = 41\n");
    await page.getByTestId("run").click();
    await waitForStatus(page, ["success"]);
    await setCode(page, "import pandas as pd\ndf = pd.DataFrame({'a': [1, 2, 3], 'b': [4.0, 5.0, 6.0]})\nx + 1\n");
    await page.getByTestId("run").click();
    await waitForStatus(page, ["success"]);
    await page.getByTestId("tab-result").click();
    assert.equal(await page.getByTestId("result-repr").textContent(), "42");
    await page.getByTestId("tab-variables").click();
    const table = page.getByTestId("variables-table");
    await table.locator("tr[data-variable=x]").waitFor();
    assert.match(await table.locator("tr[data-variable=x]").textContent(), /^xint/);
    const df = await table.locator("tr[data-variable=df]").textContent();
    assert.match(df, /DataFrame/);
    assert.match(df, /shape \(3, 2\)/);
    await screenshot(page, "session-variables");
    await page.getByTestId("session-delete").click();
    await page.getByTestId("session-info").waitFor({ state: "detached" });
  }));

test("an exception shows the traceback", () => withPlayground("exception", {}, async (page) => {
  await setCode(page, "def ratio(a, b):\n    return a / b\n\nratio(1, 0)\n");
  await page.getByTestId("run").click();
  await waitForStatus(page, ["error"]);
  const traceback = page.getByTestId("traceback");
  await traceback.waitFor();
  assert.match(await traceback.textContent(), /ZeroDivisionError/);
  assert.match(await traceback.locator(".penny-own-frame").first().textContent(), /File "<cell>", line \d+/,
    "the user's frames are marked");
}));

test("import subprocess gets a validation marker before running", () => withPlayground("validation", {}, async (page) => {
  const submitted = [];
  page.on("request", (request) => { if (request.url().includes("/api/v1/jobs")) submitted.push(request.url()); });
  await setCode(page, "import subprocess\nprint('never')\n");
  await page.locator(".monaco-editor .squiggly-error").first().waitFor({ timeout: 15_000 });
  assert.match(await page.getByTestId("validation").textContent(), /line 1: .*subprocess/);
  await page.locator(".view-lines span", { hasText: "subprocess" }).last().hover();
  await page.locator(".monaco-hover").filter({ hasText: "blocked_import" }).first().waitFor();
  await page.getByTestId("tab-problems").click();
  assert.match(await page.getByTestId("findings").textContent(), /blocked_import/);
  assert.deepEqual(submitted, [], "nothing ran");
}));

test("cancel ends while True: pass", () => withPlayground("cancel", {}, async (page) => {
  await setCode(page, "while True:\n    pass\n");
  await page.getByTestId("run").click();
  await waitForStatus(page, ["running"]);
  await page.getByTestId("cancel").click();
  await waitForStatus(page, ["cancelled"], 15_000);
  assert.match(await page.getByTestId("ended").textContent(), /cancelled/);
  assert.ok(await page.getByTestId("run").isEnabled());
}));

test("a DataFrame's html with <script> does not run it", () => withPlayground("xss", {}, async (page) => {
  await setCode(page, [
    "import pandas as pd",
    "class Evil(pd.DataFrame):",
    "    def _repr_html_(self):",
    "        return (super()._repr_html_() + '<script>window.__pwned = 1</script>'",
    "                '<img src=\"data:image/png;base64,AA\" onerror=\"window.__pwned = 2\">'",
    "                '<a href=\"javascript:window.__pwned=3\">link</a>')",
    "Evil({'a': ['<script>window.__pwned = 4</script>']})",
    "",
  ].join("\n"));
  await page.getByTestId("run").click();
  await waitForStatus(page, ["success"]);
  await page.getByTestId("tab-result").click();
  const html = page.getByTestId("result-html");
  await html.locator("table").waitFor();
  await html.locator("a").click().catch(() => undefined);
  assert.equal(await page.evaluate(() => window.__pwned), undefined, "no script of the value ran");
  assert.equal(await html.locator("script").count(), 0);
  assert.equal(await html.locator("[onerror]").count(), 0);
  assert.match(await html.textContent(), /<script>window.__pwned = 4<\/script>/, "escaped text stays text");
  // Chromium reports the handler that DOMPurify's inert parse meets as a CSP violation: the second layer.
}, /^Executing inline event handler violates the following Content Security Policy directive 'script-src 'self''/));

test("a narrow window stacks the editor above the output; the keyboard reaches the tabs", () =>
  withPlayground("narrow", { width: 420, height: 900 }, async (page) => {
    const editor = await page.getByTestId("code-editor").boundingBox();
    const output = await page.getByTestId("metrics").boundingBox();
    assert.ok(output.y > editor.y + editor.height, "the output is below the editor");
    assert.ok(editor.width <= 420, "nothing is wider than the window");
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `no horizontal scroll (${overflow}px)`);
    await page.getByTestId("tab-output").focus();
    await page.keyboard.press("ArrowRight");
    assert.equal(await page.getByTestId("tab-result").getAttribute("aria-selected"), "true");
    await setCode(page, "print('from the keyboard')\n");
    await page.keyboard.press("Control+Enter");
    await waitForStatus(page, ["success"]);
    await page.getByTestId("tab-output").click();
    await page.getByTestId("output-line").filter({ hasText: "from the keyboard" }).waitFor();
  }));
