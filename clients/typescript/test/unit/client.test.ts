/** The client with a scripted fetch: retries, errors, stream resumption and aborts, without a service. */

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  ApiError,
  ConnectionFailed,
  errorFromResponse,
  NotFound,
  Overloaded,
  PolicyViolation,
  RequestError,
  RetryPolicy,
  SandboxClient,
  type SandboxEvent,
  ServiceError,
  SSEParser,
  Unauthorized,
  Unavailable,
  ValidationError,
} from "../../src/index.js";
import { envelope, FakeFetch, type Handler, json, RESULT, refused, sse, stream } from "./fake.js";

const FAST = { maxRetries: 3, backoffMs: 1, maxBackoffMs: 5 };

function clientWith(handlers: Handler[], options: { apiKey?: string; reconnects?: number } = {}) {
  const fake = new FakeFetch(handlers);
  const client = new SandboxClient({ baseUrl: "http://sandbox.test/", fetch: fake.fetch, retries: FAST, ...options });
  return { fake, client };
}

const QUEUED = sse("1-0", "queued", { jobId: "j1", status: "queued" });
const STARTED = sse("2-0", "started", { jobId: "j1", worker: "w" });
const OUT0 = sse("3-0", "stdout", { text: "0\n" });
const OUT1 = sse("3-1", "stdout", { text: "1\n" });
const DONE = sse("4-0", "result", RESULT);

describe("SSEParser", () => {
  const text = `: keepalive\n\n${QUEUED}id: 5-0\r\nevent: stdout\r\ndata: {"text":\r\ndata: "x"}\r\n\r\n`;

  test("gives the same events however the text is split", () => {
    const whole = new SSEParser().feed(text);
    assert.deepEqual(whole.map((event) => [event.id, event.event]), [["1-0", "queued"], ["5-0", "stdout"]]);
    assert.equal(whole[1]?.data, '{"text":\n"x"}');
    for (let cut = 0; cut <= text.length; cut++) {
      const parser = new SSEParser();
      assert.deepEqual([...parser.feed(text.slice(0, cut)), ...parser.feed(text.slice(cut))], whole, `cut at ${cut}`);
    }
  });
});

describe("errors", () => {
  test("map each envelope code to its class, unknown ones by status", () => {
    const cases: Array<[number, string, unknown]> = [
      [400, "validation_error", ValidationError],
      [401, "unauthorized", Unauthorized],
      [404, "not_found", NotFound],
      [422, "policy_violation", PolicyViolation],
      [429, "overloaded", Overloaded],
      [503, "unavailable", Unavailable],
      [418, "teapot", RequestError],
      [502, "bad_gateway", ServiceError],
    ];
    for (const [status, code, cls] of cases) {
      const error = errorFromResponse(status, JSON.stringify({ error: { code, message: "m", details: { a: 1 } } }), "2");
      assert.ok(error instanceof (cls as typeof ApiError), code);
      assert.equal(error.code, code);
      assert.equal(error.httpStatus, status);
      assert.deepEqual(error.details, { a: 1 });
      assert.equal(error.retryAfterMs, 2000);
    }
    const bare = errorFromResponse(502, "<html>bad gateway</html>", null);
    assert.ok(bare instanceof ServiceError);
    assert.equal(bare.code, "http_502");
    assert.equal(bare.message, "<html>bad gateway</html>");
  });
});

describe("retries", () => {
  test("a GET is retried on 503 and 429 waiting Retry-After, and sends the key each time", async () => {
    const { fake, client } = clientWith(
      [envelope(503, "unavailable", { "Retry-After": "0.01" }), envelope(429, "overloaded"), json(200, { sessions: [] })],
      { apiKey: "k" },
    );
    assert.deepEqual(await client.sessions.list(), []);
    assert.equal(fake.requests.length, 3);
    assert.ok(fake.requests.every((request) => request.headers.authorization === "Bearer k"));
    assert.equal(fake.requests[0]?.url, "http://sandbox.test/api/v1/sessions");
  });

  test("an apiKey function is asked before every request", async () => {
    const fake = new FakeFetch([json(200, { sessions: [] }), json(200, { sessions: [] }), json(200, { sessions: [] })]);
    let key: string | undefined = "first";
    const client = new SandboxClient({ baseUrl: "http://sandbox.test", fetch: fake.fetch, apiKey: () => key });
    await client.sessions.list();
    key = "second";
    await client.sessions.list();
    key = undefined;
    await client.sessions.list();
    assert.deepEqual(fake.requests.map((request) => request.headers.authorization), [
      "Bearer first",
      "Bearer second",
      undefined,
    ]);
  });

  test("a POST that runs code is not retried unless asked", async () => {
    const { fake, client } = clientWith([envelope(503, "unavailable")]);
    await assert.rejects(client.execute("1"), Unavailable);
    assert.equal(fake.requests.length, 1);
    const again = clientWith([refused(), envelope(503, "unavailable"), json(200, RESULT)]);
    assert.equal((await again.client.execute({ code: "1" }, { retry: true })).status, "success");
    assert.equal(again.fake.requests.length, 3);
  });

  test("a 4xx is never retried; no answer after the retries is ConnectionFailed", async () => {
    const { fake, client } = clientWith([envelope(404, "not_found")]);
    await assert.rejects(client.getJob("x"), NotFound);
    assert.equal(fake.requests.length, 1);
    const down = clientWith([refused(), refused(), refused(), refused()]);
    await assert.rejects(down.client.getJob("x"), ConnectionFailed);
    assert.equal(down.fake.requests.length, 4);
  });

  test("the backoff grows with jitter and Retry-After wins, capped", () => {
    const policy = new RetryPolicy({ backoffMs: 100, maxBackoffMs: 1000, random: () => 0.5 });
    assert.equal(policy.delayMs(1), 75);
    assert.equal(policy.delayMs(3), 300);
    assert.equal(policy.delayMs(10), 750);
    assert.equal(policy.delayMs(1, 5000), 1000);
  });
});

describe("streams", () => {
  test("a dropped stream resumes after the last event; repeated events are not delivered twice", async () => {
    const { fake, client } = clientWith(
      [stream([QUEUED, STARTED, OUT0], "break"), stream([OUT0, OUT1, DONE])],
      { apiKey: "k" },
    );
    const events: SandboxEvent[] = [];
    const result = await client.executeStream({ code: "x", timeout: 1000 }, (event) => {
      events.push(event);
    });
    assert.deepEqual(events.map((event) => event.id), ["1-0", "2-0", "3-0", "3-1", "4-0"]);
    assert.equal(result.stdout, "0\n1\n");
    const [submit, resume] = fake.requests;
    assert.equal(submit?.method, "POST");
    assert.deepEqual(submit?.body, { code: "x", timeout: 1000 });
    assert.equal(resume?.method, "GET");
    assert.equal(resume?.url, "http://sandbox.test/api/v1/jobs/j1/events");
    assert.equal(resume?.headers["last-event-id"], "3-0");
    assert.equal(resume?.headers.authorization, "Bearer k");
  });

  test("a stream that broke before the job was queued is not re-submitted", async () => {
    const { fake, client } = clientWith([stream([], "break")]);
    await assert.rejects(client.stream("x").untilResult(), (error: unknown) => {
      return error instanceof ConnectionFailed && /not re-submitted/.test(error.message);
    });
    assert.equal(fake.requests.length, 1);
  });

  test("resuming gives up after the allowed reconnects without progress", async () => {
    const { fake, client } = clientWith(
      [stream([QUEUED], "break"), stream([QUEUED], "break"), stream([], "break")],
      { reconnects: 2 },
    );
    const seen: string[] = [];
    await assert.rejects(client.executeStream("x", (event) => seen.push(event.id)), ConnectionFailed);
    assert.deepEqual(seen, ["1-0"]);
    assert.equal(fake.requests.length, 3);
  });

  test("a stream resumed with lastEventId starts after it", async () => {
    const { fake, client } = clientWith([stream([OUT1, DONE])]);
    const ids: string[] = [];
    for await (const event of client.job("j1").events({ lastEventId: "3-0" })) {
      ids.push(event.id);
    }
    assert.deepEqual(ids, ["3-1", "4-0"]);
    assert.equal(fake.requests[0]?.headers["last-event-id"], "3-0");
  });

  test("a stream resumed after its result ends at once, with the result from the job's record", async () => {
    const { fake, client } = clientWith([stream([]), json(200, { jobId: "j1", status: "success", result: RESULT })]);
    const events = client.job("j1").events({ lastEventId: "4-0" });
    const seen: SandboxEvent[] = [];
    for await (const event of events) {
      seen.push(event);
    }
    assert.deepEqual(seen, []);
    assert.deepEqual(events.result, RESULT);
    assert.equal(fake.requests[1]?.url, "http://sandbox.test/api/v1/jobs/j1");
    const expired = clientWith([stream([]), envelope(404, "not_found")]);
    await assert.rejects(expired.client.job("j1").wait(), NotFound);
  });

  test("an unknown event type is delivered as unknown, not dropped", async () => {
    const { client } = clientWith([stream([QUEUED, sse("3-5", "novel", { a: 1 }), DONE])]);
    const events: SandboxEvent[] = [];
    await client.executeStream("x", (event) => events.push(event));
    assert.deepEqual(events[1], { id: "3-5", type: "unknown", event: "novel", data: { a: 1 } });
  });

  test("execute answered 202 (a long queue) follows the job to its result", async () => {
    const { fake, client } = clientWith([json(202, { jobId: "j1", status: "queued" }), stream([QUEUED, DONE])]);
    assert.equal((await client.execute("x")).status, "success");
    assert.equal(fake.requests[1]?.url, "http://sandbox.test/api/v1/jobs/j1/events");
  });
});

describe("AbortSignal", () => {
  test("aborting a stream that waits for data ends it with the signal's reason", async () => {
    const { client } = clientWith([stream([QUEUED], "hang")]);
    const controller = new AbortController();
    const seen: string[] = [];
    const done = client.executeStream("x", (event) => {
      seen.push(event.type);
      setTimeout(() => controller.abort(), 5);
    }, { signal: controller.signal });
    await assert.rejects(done, (error: unknown) => error instanceof Error && error.name === "AbortError");
    assert.deepEqual(seen, ["queued"]);
  });

  test("close() ends iteration quietly", async () => {
    const { client } = clientWith([stream([QUEUED], "hang")]);
    const events = client.stream("x");
    const seen: string[] = [];
    for await (const event of events) {
      seen.push(event.type);
      setTimeout(() => events.close(), 5);
    }
    assert.deepEqual(seen, ["queued"]);
    assert.equal(events.result, null);
  });

  test("a silent stream is dropped after the idle timeout and resumed", async () => {
    const fake = new FakeFetch([stream([QUEUED], "hang"), stream([DONE])]);
    const client = new SandboxClient({ baseUrl: "http://sandbox.test", fetch: fake.fetch, streamIdleTimeoutMs: 50 });
    assert.equal((await client.stream("x").untilResult()).status, "success");
    assert.equal(fake.requests[1]?.headers["last-event-id"], "1-0");
  });
});

describe("health", () => {
  test("an unhealthy service (503) is an answer, not an error", async () => {
    const { client } = clientWith([json(503, { status: "unhealthy", reason: "no worker", workers: [] })]);
    assert.equal((await client.health()).status, "unhealthy");
  });
});
