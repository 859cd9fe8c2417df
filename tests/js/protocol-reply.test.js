// The page's protocol state machine (apps/voice_agent/static/protocol.js) through a reply's life: streaming,
// interrupting (button, barge-in, server), typed turns and the client-measured voice-to-voice. Plain objects
// in, state and effects out. Run: node --test tests/js/*.test.js
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { Page, sent, timer, types } from "./harness.js";

describe("a reply", () => {
  it("streams text and audio into a new turn and ends", () => {
    const page = Page.connected();
    assert.deepEqual(types(page.msg("status", "generating")), ["bot-start", "new-response"]);
    assert.equal(page.state.agent, "Thinking…");
    assert.equal(page.state.turns.length, 1);
    assert.equal(page.state.current, 1);

    assert.deepEqual(page.msg("text_chunk", "Hello "), [{ type: "bot-text", text: "Hello " }]);
    page.msg("text_chunk", "there.");
    assert.deepEqual(page.msg("audio", "AAAA"), [{ type: "play", audio: "AAAA" }]);
    assert.equal(page.state.agent, "Speaking… (talk to interrupt)");
    assert.deepEqual(page.msg("status", "complete"), [{ type: "bot-end", interrupted: false }]);

    assert.deepEqual(page.state.replies, ["", "Hello there."]);
    assert.equal(page.state.counts.audioChunksReceived, 1);
    assert.equal(page.state.counts.audioChunksDropped, 0);
    assert.equal(page.state.server, "complete");
    assert.deepEqual(page.state.messages, { status: 3, session: 1, text_chunk: 2, audio: 1 });
  });

  it("is not played before the page has audio, and says how to hear it", () => {
    const page = Page.connected();
    page.msg("status", "generating");
    assert.deepEqual(page.msg("audio", "AAAA", { audioReady: false }), []);
    assert.equal(page.state.counts.audioChunksDropped, 1);
    assert.match(page.state.agent, /press “Start talking” to hear it/);
  });

  it("shows the user's transcript, interim and final", () => {
    const page = Page.connected();
    assert.deepEqual(page.msg("transcript", { text: "what is", is_final: false }), [
      { type: "user-text", text: "what is", final: false },
    ]);
    assert.deepEqual(page.msg("transcript", { text: "what is the time", is_final: true }), [
      { type: "user-text", text: "what is the time", final: true },
    ]);
    assert.equal(page.state.transcripts.length, 2);
    assert.equal(page.state.activeSinceOpen, true);
  });

  it("keeps the last 200 transcripts", () => {
    const page = Page.connected();
    for (let i = 0; i < 205; i++) page.msg("transcript", { text: `t${i}`, is_final: true });
    assert.equal(page.state.transcripts.length, 200);
    assert.equal(page.state.transcripts[0].text, "t5");
  });
});

describe("interrupting", () => {
  it("flushes, tells the server and ignores the cut reply's audio and text until it confirms", () => {
    const page = Page.connected();
    page.msg("status", "generating");
    page.msg("audio", "AAAA");
    const fx = page.on({ type: "interrupt", reason: "button" }, { playing: true, audioTime: 4.5 });
    assert.deepEqual(types(fx), ["flush", "send", "timer", "bot-end"]);
    assert.deepEqual(sent(fx), [{ type: "interrupt" }]);
    assert.deepEqual(timer(fx, "drop"), { type: "timer", name: "drop", ms: 1500 });
    assert.deepEqual(fx.at(-1), { type: "bot-end", interrupted: true });
    assert.deepEqual(page.state.lastInterrupt, { reason: "button", time: 4.5 });
    assert.equal(page.state.turns[0].interrupted, true);
    assert.equal(page.state.counts.interruptsSent, 1);

    // Audio and text of the cut reply still in flight are not played or shown.
    assert.deepEqual(page.msg("audio", "BBBB"), []);
    assert.deepEqual(page.msg("text_chunk", "more"), []);
    assert.equal(page.state.counts.audioChunksDropped, 1);

    // The server confirms: the page listens again at once.
    const confirm = page.msg("status", "interrupted");
    assert.ok(confirm.some((e) => e.type === "cancel-timer" && e.name === "drop"));
    assert.equal(page.state.dropping, false);
    assert.equal(page.state.counts.interruptsReceived, 1);
    assert.deepEqual(page.msg("audio", "CCCC"), [{ type: "play", audio: "CCCC" }]);
  });

  it("stops ignoring audio when the server never confirms (the drop timer fires)", () => {
    const page = Page.connected();
    page.on({ type: "interrupt", reason: "button" });
    page.on({ type: "timer", name: "drop" });
    assert.equal(page.state.dropping, false);
    assert.deepEqual(types(page.msg("audio", "AAAA")), ["play"]);
  });

  it("sends nothing while offline, and does not count it", () => {
    const page = Page.connected();
    const fx = page.on({ type: "interrupt", reason: "button" }, { online: false });
    assert.deepEqual(sent(fx), []);
    assert.equal(page.state.counts.interruptsSent, 0);
  });

  it("does not mark a finished, silent reply as interrupted", () => {
    const page = Page.connected();
    page.msg("status", "generating");
    page.msg("status", "complete");
    const fx = page.on({ type: "interrupt", reason: "button" }, { playing: false });
    assert.ok(fx.some((e) => e.type === "bot-end" && e.interrupted === false));
    assert.equal(page.state.turns[0].interrupted, false);
  });

  it("marks the reply when the server's own barge-in cuts it", () => {
    const page = Page.connected();
    page.msg("status", "generating");
    const fx = page.msg("status", "interrupted");
    assert.deepEqual(types(fx), ["flush", "bot-end", "cancel-timer"]);
    assert.ok(fx.some((e) => e.type === "bot-end" && e.interrupted));
    assert.equal(page.state.turns[0].interrupted, true);
  });

  it("is what the user's speech over the agent's audio does (barge-in), and only then", () => {
    const page = Page.connected();
    assert.deepEqual(page.on({ type: "speech-start", botPlaying: false }), []);
    assert.equal(page.state.agent, "Listening…");
    page.msg("status", "generating");
    const fx = page.on({ type: "speech-start", botPlaying: true }, { playing: true });
    assert.deepEqual(sent(fx), [{ type: "interrupt" }]);
    assert.equal(page.state.counts.bargeIns, 1);
    assert.equal(page.state.lastInterrupt?.reason, "barge-in");
  });
});

describe("typed turns", () => {
  it("are sent and shown; a turn started from one is marked typed", () => {
    const page = Page.connected();
    const fx = page.on({ type: "typed", text: "hi there" }, { audioTime: 7 });
    assert.deepEqual(fx, [
      { type: "send", message: { type: "text", data: "hi there" } },
      { type: "user-typed", text: "hi there" },
    ]);
    assert.equal(page.state.typedAt, 7);
    page.msg("status", "generating", { voicedEnd: 3 });
    assert.equal(page.state.turns[0].typed, true);
  });

  it("interrupt a reply that is playing first", () => {
    const page = Page.connected();
    page.msg("status", "generating");
    const fx = page.on({ type: "typed", text: "stop" }, { playing: true });
    assert.deepEqual(sent(fx), [{ type: "interrupt" }, { type: "text", data: "stop" }]);
    assert.equal(page.state.lastInterrupt?.reason, "typed");
  });

  it("are not sent while offline, and the page says so", () => {
    const page = Page.connected();
    assert.deepEqual(page.on({ type: "typed", text: "hello" }, { online: false }), []);
    assert.deepEqual(page.state.notice, { text: "Not connected — your message was not sent.", fatal: false });
  });
});

describe("client voice-to-voice", () => {
  it("runs from the end of the user's speech to the reply's first audible sample, once per turn", () => {
    const page = Page.connected();
    page.msg("status", "generating", { voicedEnd: 2.0 });
    page.on({ type: "scheduled", start: 2.5, latency: 0.02 }, { voicedEnd: 2.0 });
    assert.equal(Math.round(/** @type {number} */ (page.state.turns[0].clientV2v)), 520);
    page.on({ type: "scheduled", start: 3.5, latency: 0.02 }, { voicedEnd: 2.0 });
    assert.equal(Math.round(/** @type {number} */ (page.state.turns[0].clientV2v)), 520);
  });

  it("uses the later of the last voiced frame and a typed send", () => {
    const page = Page.connected();
    page.on({ type: "typed", text: "hi" }, { audioTime: 5.0, voicedEnd: 2.0 });
    page.msg("status", "generating", { voicedEnd: 2.0 });
    page.on({ type: "scheduled", start: 5.3, latency: 0 }, { voicedEnd: 2.0 });
    assert.equal(Math.round(/** @type {number} */ (page.state.turns[0].clientV2v)), 300);
  });

  it("is not measured from speech that came after the reply started", () => {
    const page = Page.connected();
    page.msg("status", "generating");
    page.on({ type: "scheduled", start: 2.0, latency: 0 }, { voicedEnd: 2.5 });
    assert.equal(page.state.turns[0].clientV2v, null);
    page.on({ type: "scheduled", start: 2.0, latency: 0 }, { voicedEnd: null });
    assert.equal(page.state.turns[0].clientV2v, null);
  });
});
