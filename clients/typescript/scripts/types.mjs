// The API types of the client, generated from the service's OpenAPI document with openapi-typescript.
//
//   node scripts/types.mjs generate   writes src/schema.ts from the spec the current API code describes
//   node scripts/types.mjs check      exits 1 when the committed src/schema.ts differs from what it would write
//
// The spec comes from `python -m api.openapi --out FILE` run in the repository root (what the API serves),
// with the service's settings at their defaults so that the output does not depend on the caller's environment.
// PENNY_PYTHON names the Python to run it with (default: the repository's .venv, else python3).

import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import openapiTS, { astToString } from "openapi-typescript";

const here = dirname(fileURLToPath(import.meta.url));
const client = resolve(here, "..");
const repo = resolve(client, "..", "..");
const target = join(client, "src", "schema.ts");

const HEADER = `/**
 * Generated from the PENNY Sandbox OpenAPI document by openapi-typescript: do not edit.
 * Regenerate with \`npm run generate-types\` (in clients/typescript); \`npm run check-types\` fails when stale.
 */

`;

function python() {
  if (process.env.PENNY_PYTHON) {
    return process.env.PENNY_PYTHON;
  }
  const venv = join(repo, ".venv", "bin", "python");
  return existsSync(venv) ? venv : "python3";
}

function dumpSpec() {
  const dir = mkdtempSync(join(tmpdir(), "penny-openapi-"));
  const out = join(dir, "openapi.json");
  try {
    // Only what Python needs to run: no PENNY_*/SANDBOX_* settings, so the spec's limits are the defaults.
    const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? dir, LANG: "C.UTF-8" };
    execFileSync(python(), ["-m", "api.openapi", "--out", out], { cwd: repo, env, stdio: ["ignore", "ignore", "pipe"] });
    return JSON.parse(readFileSync(out, "utf8"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function render() {
  const ast = await openapiTS(dumpSpec(), { defaultNonNullable: false, alphabetize: false });
  return HEADER + astToString(ast);
}

const command = process.argv[2];
const text = await render();
if (command === "generate") {
  writeFileSync(target, text);
  console.log(`wrote ${target}`);
} else if (command === "check") {
  const committed = existsSync(target) ? readFileSync(target, "utf8") : "";
  if (committed !== text) {
    const a = committed.split("\n");
    const b = text.split("\n");
    let line = 0;
    while (line < a.length && line < b.length && a[line] === b[line]) {
      line += 1;
    }
    console.error(
      `src/schema.ts is stale: it differs from the current API spec from line ${line + 1}\n` +
        `  committed: ${a[line] ?? "(end of file)"}\n  generated: ${b[line] ?? "(end of file)"}\n` +
        "Run `npm run generate-types` in clients/typescript and commit src/schema.ts.",
    );
    process.exit(1);
  }
  console.log("src/schema.ts matches the API spec");
} else {
  console.error("usage: node scripts/types.mjs generate|check");
  process.exit(2);
}
