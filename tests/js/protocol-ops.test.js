// The page's protocol machine when the server restarts (`status: draining`, close 1012) and when a connection
// comes back with its resume token. Run: node --test tests/js/*.test.js
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { socketUrl } from "../../apps/voice_agent/static/protocol.js";
import { Page, types } from "./harness.js";

describe("a draining server", () => {
  it("says so, and after the reply the page reconnects at once instead of backing off", () => {
    const page = Page.connected();
    page.msg("status", "generating");
    page.msg("status", "draining");
    assert.equal(page.state.draining, true);
    assert.match(page.state.notice.text, /restarting/);
    assert.equal(page.state.notice.fatal, false);
    page.msg("status", "complete");
    const fx = page.on({ type: "reconnecting", attempt: 1, delay: 480, code: 1012 });
    assert.deepEqual(types(fx), ["flush", "bot-end", "reconnect-now"]);
    assert.equal(page.state.connectionDetail, "now (the server restarted)");
    assert.equal(page.state.draining, false);
  });

  it("is never mistaken for an agent that cannot run, even with an error just before the close", () => {
    const page = Page.connected();
    page.msg("status", "draining");
    page.msg("error", "something went wrong", { now: 5000 });
    const fx = page.on({ type: "reconnecting", attempt: 1, delay: 500 }, { now: 5100 });
    assert.equal(page.state.fatal, false);
    assert.ok(types(fx).includes("reconnect-now"));
  });

  it("a 1012 close alone (no draining status seen) also reconnects at once", () => {
    const page = Page.connected();
    assert.ok(types(page.on({ type: "reconnecting", attempt: 1, delay: 500, code: 1012 })).includes("reconnect-now"));
  });

  it("any other close backs off as before", () => {
    const page = Page.connected();
    const fx = page.on({ type: "reconnecting", attempt: 2, delay: 1000, code: 1006 });
    assert.ok(!types(fx).includes("reconnect-now"));
    assert.equal(page.state.connectionDetail, "in 1.0 s (attempt 2)");
  });

  it("the next connection starts without the draining flag", () => {
    const page = Page.connected();
    page.msg("status", "draining");
    page.on({ type: "connecting" });
    page.on({ type: "open" });
    assert.equal(page.state.draining, false);
  });
});

describe("resuming", () => {
  it("keeps the resume token of the session message and puts it on the next connection's address", () => {
    const page = Page.connected({ resume_token: "tok-1", resumed: false });
    assert.equal(page.state.resumeToken, "tok-1");
    assert.equal(socketUrl("ws://h/ws", page.state), "ws://h/ws?resume=tok-1");
    assert.equal(socketUrl("ws://h/ws?token=a b", page.state), "ws://h/ws?token=a b&resume=tok-1");
    page.on({ type: "reconnecting", attempt: 1, delay: 500 });
    page.on({ type: "connecting" });
    assert.equal(page.state.resumeAsked, true);
  });

  it("a resumed session is seamless and brings the next token", () => {
    const page = Page.connected({ resume_token: "tok-1" });
    page.on({ type: "connecting" });
    page.on({ type: "open" });
    page.msg("session", { ready: true, problems: [], resumed: true, resume_token: "tok-2" });
    assert.equal(page.state.resumeToken, "tok-2");
    assert.deepEqual(page.state.notice, { text: "", fatal: false });
    assert.equal(page.state.resumeAsked, false);
  });

  it("a conversation the server could not bring back is said plainly, and the new one goes on", () => {
    const page = Page.connected({ resume_token: "tok-1" });
    page.on({ type: "connecting" });
    page.on({ type: "open" });
    const fx = page.msg("session", { ready: true, problems: [], resumed: false, resume_token: "tok-9" });
    assert.match(page.state.notice.text, /could not continue your conversation/);
    assert.equal(page.state.fatal, false);
    assert.deepEqual(fx.at(-1), { type: "timer", name: "notice", ms: 10000 });
    assert.equal(page.state.resumeToken, "tok-9");
  });

  it("a server without resuming (no token) leaves the address alone", () => {
    const page = Page.connected({ resume_token: "tok-1" });
    page.msg("session", { ready: true, problems: [] });
    assert.equal(page.state.resumeToken, null);
    assert.equal(socketUrl("ws://h/ws", page.state), "ws://h/ws");
    page.on({ type: "connecting" });
    assert.equal(page.state.resumeAsked, false);
  });

  it("a fresh page never asks to resume", () => {
    const page = new Page();
    page.on({ type: "connecting" });
    assert.equal(page.state.resumeAsked, false);
    assert.equal(socketUrl("ws://h/ws", page.state), "ws://h/ws");
  });
});
