/**
 * The client against the real service (started by tests/integration/test_typescript_client.py, which passes
 * PENNY_TEST_URL: an API without keys, and PENNY_TEST_KEYED_URL + PENNY_TEST_API_KEY: an API of the same stack
 * with one key configured).
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  ConnectionFailed,
  Conflict,
  NotFound,
  PolicyViolation,
  SandboxClient,
  type SandboxEvent,
  Unauthorized,
  Unavailable,
  ValidationError,
} from "../../src/index.js";
import { BreakingProxy } from "./proxy.js";

function env(name: string): string {
  const value = process.env[name];
  assert.ok(value, `${name} is not set (run this through tests/integration/test_typescript_client.py)`);
  return value;
}

const URL = env("PENNY_TEST_URL");
const KEYED_URL = env("PENNY_TEST_KEYED_URL");
const API_KEY = env("PENNY_TEST_API_KEY");

const COUNT_SLOWLY = "import time\nfor i in range(6):\n    print(i, flush=True)\n    time.sleep(0.2)\n'done'";
// Prints, then waits: a test that needs the code to be running cancels it on seeing `ready`.
const PRINT_THEN_WAIT = "import time\nprint('ready', flush=True)\ntime.sleep(20)\nprint('never')";

const client = new SandboxClient({ baseUrl: URL });

/** The events of a job's stream as (id, type) pairs, read again from the service after the fact. */
async function storedEvents(jobId: string): Promise<Array<[string, string]>> {
  const events: Array<[string, string]> = [];
  for await (const event of client.job(jobId).events()) {
    events.push([event.id, event.type]);
  }
  return events;
}

function stdoutOf(events: SandboxEvent[]): string {
  return events.map((event) => (event.type === "stdout" ? event.data.text : "")).join("");
}

function isAbort(error: unknown): boolean {
  return error instanceof Error && error.name === "AbortError";
}

describe("executions", () => {
  test("execute returns the result with output and the trailing value", async () => {
    const result = await client.execute({ code: "x = 6 * 7\nprint('hi')\nx", timeout: 10_000 });
    assert.equal(result.status, "success");
    assert.equal(result.stdout, "hi\n");
    assert.deepEqual(result.result && { type: result.result.type, repr: result.result.repr }, {
      type: "int",
      repr: "42",
    });
    assert.equal(result.error, null);
    assert.match(result.jobId, /^[0-9a-f]{32}$/);
  });

  test("code that raises is a result with the error, not a thrown error", async () => {
    const result = await client.execute("1 / 0");
    assert.equal(result.status, "error");
    assert.equal(result.error?.type, "ZeroDivisionError");
    assert.ok(result.error?.traceback.length);
  });

  test("executeStream delivers every event in order and resolves with the result", async () => {
    const events: SandboxEvent[] = [];
    const result = await client.executeStream({ code: COUNT_SLOWLY }, (event) => {
      events.push(event);
    });
    const types = events.map((event) => event.type).filter((type) => type !== "metrics");
    assert.deepEqual(types, ["queued", "started", "stdout", "stdout", "stdout", "stdout", "stdout", "stdout", "result"]);
    assert.equal(stdoutOf(events), "0\n1\n2\n3\n4\n5\n");
    const last = events[events.length - 1];
    assert.ok(last?.type === "result");
    assert.deepEqual(last.data, result);
    assert.equal(result.result?.repr, "'done'");
    assert.deepEqual(events.map((event) => [event.id, event.type]), await storedEvents(result.jobId));
  });

  test("stream is an async iterator of typed events ending with the result", async () => {
    const stream = client.stream({ code: "import warnings\nprint('a')\nwarnings.warn('careful')\n3" });
    const seen: SandboxEvent[] = [];
    for await (const event of stream) {
      seen.push(event);
    }
    assert.equal(seen[0]?.type, "queued");
    assert.equal(seen[seen.length - 1]?.type, "result");
    assert.ok(seen.some((event) => event.type === "stderr" && event.data.text.includes("UserWarning: careful")));
    assert.equal(stream.result?.result?.repr, "3");
    assert.equal(stream.jobId, stream.result?.jobId);
    assert.equal(stream.lastEventId, seen[seen.length - 1]?.id);
  });

  test("submit returns a job to wait for, whose events replay from the start", async () => {
    const job = await client.submit({ code: COUNT_SLOWLY });
    const result = await job.wait();
    assert.equal(result.status, "success");
    assert.equal(result.stdout, "0\n1\n2\n3\n4\n5\n");
    const info = await job.info();
    assert.equal(info.status, "success");
    assert.deepEqual(info.result, result);
    const replay: SandboxEvent[] = [];
    for await (const event of job.events()) {
      replay.push(event);
    }
    assert.equal(stdoutOf(replay), result.stdout);
    // Resuming after any event gives exactly the events after it.
    const middle = replay[3];
    assert.ok(middle);
    const rest: string[] = [];
    for await (const event of job.events({ lastEventId: middle.id })) {
      rest.push(event.id);
    }
    assert.deepEqual(rest, replay.slice(4).map((event) => event.id));
    // Resuming after the result gives no event, and the result (from the job's record).
    const afterEnd = job.events({ lastEventId: replay[replay.length - 1]?.id ?? null });
    for await (const event of afterEnd) {
      assert.fail(`an event after the result: ${event.type}`);
    }
    assert.deepEqual(afterEnd.result, result);
  });

  test("cancel kills a running job, which ends cancelled", async () => {
    const job = await client.submit({ code: PRINT_THEN_WAIT, timeout: 30_000 });
    for await (const event of job.events()) {
      if (event.type === "stdout") {
        break; // it is running
      }
    }
    const cancelled = await job.cancel();
    assert.equal(cancelled.status, "cancelled");
    const result = await job.wait();
    assert.equal(result.status, "cancelled");
    assert.ok(!result.stdout.includes("never"));
    // A finished job cannot be cancelled.
    const done = await client.submit("1");
    await done.wait();
    await assert.rejects(done.cancel(), (error: unknown) => error instanceof Conflict && error.httpStatus === 409);
  });
});

describe("a stream whose connection drops", () => {
  test("executeStream resumes with Last-Event-ID: every event once, none lost", async () => {
    const proxy = new BreakingProxy(URL, { cutAfter: "stdout", cuts: 1 });
    const viaProxy = new SandboxClient({ baseUrl: await proxy.start() });
    try {
      const events: SandboxEvent[] = [];
      const result = await viaProxy.executeStream({ code: COUNT_SLOWLY }, (event) => {
        events.push(event);
      });
      assert.equal(proxy.cut, 1);
      const resumes = proxy.requests("/events");
      assert.equal(resumes.length, 1);
      // It resumed after an event it had delivered: the cut one (or, if the cut also swallowed bytes still in
      // flight, one before it).
      const resumedAfter = events.findIndex((event) => event.id === resumes[0]?.lastEventId);
      const firstStdout = events.findIndex((event) => event.type === "stdout");
      assert.ok(resumedAfter >= 0 && resumedAfter <= firstStdout, `resumed after ${resumes[0]?.lastEventId}`);
      assert.equal(result.stdout, "0\n1\n2\n3\n4\n5\n");
      assert.equal(stdoutOf(events), result.stdout);
      const ids = events.map((event) => event.id);
      assert.equal(new Set(ids).size, ids.length, "an event was delivered twice");
      assert.deepEqual(events.map((event) => [event.id, event.type]), await storedEvents(result.jobId));
    } finally {
      await proxy.stop();
    }
  });

  test("job.events resumes after each of several cuts", async () => {
    const job = await client.submit({ code: COUNT_SLOWLY });
    const proxy = new BreakingProxy(URL, { cutAfter: "stdout", cuts: 3 });
    const viaProxy = new SandboxClient({ baseUrl: await proxy.start() });
    try {
      const events: SandboxEvent[] = [];
      for await (const event of viaProxy.job(job.id).events()) {
        events.push(event);
      }
      assert.equal(proxy.cut, 3);
      assert.equal(proxy.requests("/events").length, 4);
      assert.deepEqual(events.map((event) => [event.id, event.type]), await storedEvents(job.id));
      assert.equal(stdoutOf(events), "0\n1\n2\n3\n4\n5\n");
    } finally {
      await proxy.stop();
    }
  });
});

describe("retries", () => {
  test("an idempotent call is retried after a 503, honouring Retry-After", async () => {
    const proxy = new BreakingProxy(URL, { unavailable: 1, unavailablePath: "/api/v1/sessions" });
    const viaProxy = new SandboxClient({ baseUrl: await proxy.start() });
    try {
      const started = Date.now();
      const sessions = await viaProxy.sessions.list();
      assert.ok(Array.isArray(sessions));
      assert.equal(proxy.refused, 1);
      assert.equal(proxy.requests("/api/v1/sessions").length, 2);
      assert.ok(Date.now() - started >= 950, "the retry did not wait for Retry-After");
    } finally {
      await proxy.stop();
    }
  });

  test("a call that runs code is not retried unless asked", async () => {
    const proxy = new BreakingProxy(URL, { unavailable: 1, unavailablePath: "/api/v1/execute" });
    const viaProxy = new SandboxClient({ baseUrl: await proxy.start() });
    try {
      await assert.rejects(viaProxy.execute("1"), (error: unknown) => {
        return error instanceof Unavailable && error.retryAfterMs === 1000 && error.code === "unavailable";
      });
      assert.equal(proxy.requests("/api/v1/execute").length, 1);
      const result = await viaProxy.execute("1 + 1", { retry: true }); // the 503 was spent: this one runs
      assert.equal(result.result?.repr, "2");
    } finally {
      await proxy.stop();
    }
  });

  test("no answer at all is ConnectionFailed", async () => {
    const proxy = new BreakingProxy(URL, {});
    const dead = await proxy.start();
    await proxy.stop();
    const nowhere = new SandboxClient({ baseUrl: dead, retries: { maxRetries: 1, backoffMs: 10 } });
    await assert.rejects(nowhere.health(), ConnectionFailed);
  });
});

describe("sessions", () => {
  test("create, run with state, set variables, get, list, delete", async () => {
    const session = await client.sessions.create({ variables: { base: 10 } });
    try {
      assert.equal(session.created?.sessionId, session.id);
      const first = await session.execute("total = base + 1\ntotal");
      assert.equal(first.status, "success");
      assert.equal(first.sessionId, session.id);
      assert.equal(first.result?.repr, "11");
      const second = await client.sessions.execute(session.id, "total * 2");
      assert.equal(second.result?.repr, "22");
      const variables = await client.sessions.setVariables(session.id, { name: "penny", items: [1, 2, 3] });
      assert.equal(variables.name?.repr, "'penny'");
      assert.equal(variables.items?.type, "list");
      const streamed: SandboxEvent[] = [];
      const third = await session.executeStream("print(name, len(items))", (event) => {
        streamed.push(event);
      });
      assert.equal(third.stdout, "penny 3\n");
      const info = await session.info();
      assert.equal(info.sessionId, session.id);
      assert.equal(info.executionCount >= 3, true);
      assert.ok("total" in info.variables);
      const listed = await client.sessions.list();
      assert.ok(listed.some((item) => item.sessionId === session.id));
      const report = await session.install(["tabulate", "left-pad"]);
      assert.deepEqual(report.installed.map((item) => item.name), ["tabulate"]);
      assert.deepEqual(report.failed.map((item) => item.name), ["left-pad"]);
      const table = await session.execute("import tabulate\ntabulate.tabulate([[1]], headers=['a'])");
      assert.equal(table.status, "success");
    } finally {
      await session.delete();
    }
    await assert.rejects(client.sessions.get(session.id), NotFound);
    await assert.rejects(session.execute("1"), NotFound);
    await session.close(); // already gone: close ignores it
  });
});

describe("checks, packages and health", () => {
  test("validate reports findings without running anything", async () => {
    const report = await client.validate({ code: "import subprocess\nsubprocess.run(['id'])" });
    assert.equal(report.valid, false);
    assert.ok(report.errors.some((finding) => finding.line === 1));
    assert.equal((await client.validate("print(1)")).valid, true);
  });

  test("packages lists the allowlist and health answers", async () => {
    const packages = await client.packages();
    assert.ok(packages.length > 0);
    assert.ok(packages.every((item) => typeof item.name === "string"));
    const health = await client.health();
    assert.ok(["healthy", "degraded"].includes(health.status));
    assert.ok(health.workers.length >= 1);
    const version = await client.version();
    assert.match(version.apiVersion, /^1\./);
    assert.ok(version.version.length > 0);
  });
});

describe("errors", () => {
  test("an unknown job is NotFound (404)", async () => {
    await assert.rejects(client.getJob("0123456789abcdef0123456789abcdef"), (error: unknown) => {
      return error instanceof NotFound && error.httpStatus === 404 && error.code === "not_found";
    });
    await assert.rejects(async () => {
      for await (const _ of client.job("0123456789abcdef0123456789abcdef").events()) {
        // never reached
      }
    }, NotFound);
  });

  test("strict code breaking the policy is PolicyViolation (422) with the findings", async () => {
    await assert.rejects(client.execute({ code: "import subprocess", strict: true }), (error: unknown) => {
      return error instanceof PolicyViolation && error.httpStatus === 422 && Array.isArray(error.details.errors);
    });
  });

  test("a malformed request is ValidationError (400)", async () => {
    await assert.rejects(client.execute({ code: "1", timeout: 0 }), (error: unknown) => {
      return error instanceof ValidationError && error.httpStatus === 400;
    });
  });

  test("without a valid key nothing is served (401); with it the same client works", async () => {
    for (const apiKey of [undefined, "not-the-key-but-long-enough"]) {
      const stranger = new SandboxClient({ baseUrl: KEYED_URL, apiKey });
      await assert.rejects(stranger.sessions.list(), (error: unknown) => {
        return error instanceof Unauthorized && error.httpStatus === 401 && error.code === "unauthorized";
      });
      await assert.rejects(stranger.execute("1"), Unauthorized);
    }
    const keyed = new SandboxClient({ baseUrl: KEYED_URL, apiKey: API_KEY });
    const events: SandboxEvent[] = [];
    const result = await keyed.executeStream("print('keyed')", (event) => {
      events.push(event);
    });
    assert.equal(result.stdout, "keyed\n");
    // The job belongs to the key: the open API (another tenant) does not see it.
    await assert.rejects(client.getJob(result.jobId), NotFound);
    assert.equal((await keyed.getJob(result.jobId)).status, "success");
  });
});

describe("AbortSignal", () => {
  test("an aborted execute rejects with AbortError", async () => {
    const controller = new AbortController();
    const pending = client.execute({ code: "import time\ntime.sleep(2)", timeout: 10_000 }, { signal: controller.signal });
    setTimeout(() => controller.abort(), 200);
    await assert.rejects(pending, isAbort);
  });

  test("aborting a stream mid-way ends it with AbortError; the job goes on and can be cancelled", async () => {
    const controller = new AbortController();
    const stream = client.stream({ code: PRINT_THEN_WAIT, timeout: 30_000 }, { signal: controller.signal });
    const seen: string[] = [];
    await assert.rejects(async () => {
      for await (const event of stream) {
        seen.push(event.type);
        if (event.type === "stdout") {
          controller.abort();
        }
      }
    }, isAbort);
    assert.equal(seen[seen.length - 1], "stdout");
    assert.ok(stream.jobId);
    const cancelled = await client.job(stream.jobId).cancel();
    assert.equal(cancelled.status, "cancelled");
  });

  test("a signal already aborted sends nothing", async () => {
    const proxy = new BreakingProxy(URL, {});
    const viaProxy = new SandboxClient({ baseUrl: await proxy.start() });
    try {
      const signal = AbortSignal.abort();
      await assert.rejects(viaProxy.health({ signal }), isAbort);
      await assert.rejects(viaProxy.sessions.create({}, { signal }), isAbort);
      await assert.rejects(viaProxy.stream("1", { signal }).untilResult(), isAbort);
      assert.equal(proxy.seen.length, 0);
    } finally {
      await proxy.stop();
    }
  });

  test("a signal that aborts during a retry's wait ends the wait", async () => {
    const controller = new AbortController();
    let abortedAt = 0;
    const proxy = new BreakingProxy(URL, {
      unavailable: 5,
      unavailablePath: "/api/v1/sessions",
      // The first 503 (Retry-After: 1) is on its way: abort while the client waits the second before its retry.
      onRefused: () => setTimeout(() => {
        abortedAt = Date.now();
        controller.abort();
      }, 100),
    });
    const viaProxy = new SandboxClient({ baseUrl: await proxy.start() });
    try {
      await assert.rejects(viaProxy.sessions.list({ signal: controller.signal }), isAbort);
      assert.ok(Date.now() - abortedAt < 500, "the abort waited for the retry");
      assert.equal(proxy.refused, 1);
    } finally {
      await proxy.stop();
    }
  });
});
