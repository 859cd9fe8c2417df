// The page's side of server-side turn-taking (apps/voice_agent/static/protocol.js): `playback` start/pause/resume
// from the server, `played` reports to it, and who interrupts when the user talks over the agent.
// Run: node --test tests/js/*.test.js
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { Page, sent, types } from "./harness.js";

const TURNS = { features: ["played", "playback", "server_barge_in"] };

describe("playback messages", () => {
  it("start names the epoch, pause holds the audio once, resume plays on", () => {
    const page = Page.connected(TURNS);
    assert.deepEqual(page.msg("playback", { action: "start", epoch: 4 }), [{ type: "epoch" }]);
    assert.deepEqual(page.state.playback, { epoch: 4, paused: false });
    assert.deepEqual(page.msg("playback", { action: "pause" }), [{ type: "pause" }]);
    assert.deepEqual(page.msg("playback", { action: "pause" }), []);
    assert.equal(page.state.playback.paused, true);
    // Audio still queues while paused (the player holds it; it is not heard until the resume).
    assert.deepEqual(types(page.msg("audio", "AAAA", { playing: true })), ["play"]);
    assert.deepEqual(page.msg("playback", { action: "resume" }), [{ type: "resume" }]);
    assert.deepEqual(page.msg("playback", { action: "resume" }), []);
    assert.equal(page.state.counts.pauses, 1);
    assert.equal(page.state.counts.resumes, 1);
  });

  it("ignores what it does not understand", () => {
    const page = Page.connected(TURNS);
    for (const data of [null, "pause", { action: "start" }, { action: "start", epoch: -1 }, { action: "rewind" }]) {
      assert.deepEqual(page.msg("playback", data), []);
    }
    assert.deepEqual(page.state.playback, { epoch: null, paused: false });
  });

  it("an interrupt ends a pause: the flush drops what it held", () => {
    const page = Page.connected(TURNS);
    page.msg("playback", { action: "start", epoch: 1 });
    page.msg("playback", { action: "pause" });
    assert.ok(types(page.msg("status", "interrupted", { playing: true })).includes("flush"));
    assert.equal(page.state.playback.paused, false);
    assert.deepEqual(page.msg("playback", { action: "resume" }), []);
  });
});

describe("played reports", () => {
  it("go out every tick while the agent plays, naming the epoch", () => {
    const page = Page.connected(TURNS);
    page.msg("playback", { action: "start", epoch: 2 });
    assert.deepEqual(sent(page.on({ type: "tick" }, { playing: true, played: 0.31234 })), [
      { type: "played", data: { epoch: 2, seconds: 0.312 } },
    ]);
    assert.deepEqual(sent(page.on({ type: "tick" }, { playing: false, played: 1 })), []);
    page.msg("playback", { action: "pause" });
    assert.deepEqual(sent(page.on({ type: "tick" }, { playing: true, played: 0.4 })), []);
    assert.equal(page.state.counts.playedSent, 1);
  });

  it("and once more when playback runs dry", () => {
    const page = Page.connected(TURNS);
    page.msg("playback", { action: "start", epoch: 2 });
    assert.deepEqual(sent(page.on({ type: "playback-idle" }, { played: 2.5 })), [
      { type: "played", data: { epoch: 2, seconds: 2.5 } },
    ]);
  });

  it("go before the page's own interrupt, so the server knows what was heard", () => {
    const page = Page.connected(TURNS);
    page.msg("status", "generating");
    page.msg("playback", { action: "start", epoch: 0 });
    const messages = sent(page.on({ type: "interrupt", reason: "button" }, { playing: true, played: 1.2 }));
    assert.deepEqual(messages, [{ type: "played", data: { epoch: 0, seconds: 1.2 } }, { type: "interrupt" }]);
  });

  it("never go to a server that did not ask for them, or before an epoch was named", () => {
    const older = Page.connected();
    older.msg("playback", { action: "start", epoch: 2 });
    assert.deepEqual(sent(older.on({ type: "tick" }, { playing: true, played: 0.3 })), []);
    const early = Page.connected(TURNS);
    assert.deepEqual(sent(early.on({ type: "tick" }, { playing: true, played: 0.3 })), []);
  });
});

describe("talking over the agent", () => {
  it("is left to a server that barges in by itself", () => {
    const page = Page.connected(TURNS);
    page.msg("status", "generating");
    const effects = page.on({ type: "speech-start", botPlaying: true }, { playing: true });
    assert.deepEqual(effects, []);
    assert.equal(page.state.counts.bargeIns, 0);
    assert.equal(page.state.counts.speechOverBot, 1);
  });

  it("interrupts from the page with ?bargein=client, or when the server does not barge in", () => {
    const page = new Page({ bargeIn: "client" });
    page.on({ type: "open" });
    page.msg("session", { ready: true, ...TURNS });
    page.msg("status", "generating");
    assert.ok(sent(page.on({ type: "speech-start", botPlaying: true }, { playing: true })).some((m) => m.type === "interrupt"));
    const older = Page.connected();
    older.msg("status", "generating");
    assert.ok(sent(older.on({ type: "speech-start", botPlaying: true }, { playing: true })).some((m) => m.type === "interrupt"));
  });

  it("?bargein=server leaves it to the server even when it does not say so", () => {
    const page = new Page({ bargeIn: "server" });
    page.on({ type: "open" });
    page.msg("session", { ready: true });
    assert.deepEqual(page.on({ type: "speech-start", botPlaying: true }, { playing: true }), []);
  });
});
