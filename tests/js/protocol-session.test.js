// The page's protocol state machine (apps/voice_agent/static/protocol.js) around the session: the session message
// (rates, readiness), errors, the connection's life, metrics and odd input. Run: node --test tests/js/*.test.js
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { DEFAULT_RATES, ratesOf } from "../../apps/voice_agent/static/protocol.js";
import { Page, sent, timer } from "./harness.js";

describe("the session message", () => {
  it("sets the sample rates, and keeps the seed's for a server that does not send them", () => {
    assert.deepEqual(Page.connected().state.rates, DEFAULT_RATES);
    const page = Page.connected({ audio_in_rate: 8000, audio_out_rate: 16000 });
    assert.deepEqual(page.state.rates, { in: 8000, out: 16000 });
    page.msg("session", { ready: true });
    assert.deepEqual(page.state.rates, { in: 16000, out: 24000 });
  });

  it("ignores implausible rates", () => {
    assert.deepEqual(ratesOf({ audio_in_rate: "16000", audio_out_rate: 12.5 }), DEFAULT_RATES);
    assert.deepEqual(ratesOf({ audio_in_rate: 100, audio_out_rate: 1e6 }), DEFAULT_RATES);
    assert.deepEqual(ratesOf({ audio_in_rate: 48000, audio_out_rate: 22050 }), { in: 48000, out: 22050 });
    assert.deepEqual(ratesOf(null), DEFAULT_RATES);
  });

  it("says the agent cannot run when it is not ready, with the problems, and clears that when it is", () => {
    const page = new Page();
    page.on({ type: "open" });
    page.msg("session", { ready: false, problems: ["LLM_PROVIDER=gemini needs GEMINI_API_KEY", "no mic"] });
    assert.deepEqual(page.state.notice, { text: "LLM_PROVIDER=gemini needs GEMINI_API_KEY; no mic", fatal: true });
    assert.equal(page.state.fatal, true);
    page.msg("session", { ready: false });
    assert.equal(page.state.notice.text, "the server did not say why");
    page.msg("session", { ready: true, problems: [] });
    assert.deepEqual(page.state.notice, { text: "", fatal: false });
    assert.equal(page.state.fatal, false);
  });

  it("from an older server (no `ready`) leaves the notice alone", () => {
    const page = new Page();
    page.on({ type: "open" });
    page.on({ type: "local-error", text: "Microphone unavailable: no" });
    assert.deepEqual(page.msg("session", { engines: {} }), []);
    assert.equal(page.state.notice.text, "Microphone unavailable: no");
  });
});

describe("errors", () => {
  it("on a ready session are shown for 10 s and the session goes on", () => {
    const page = Page.connected();
    const fx = page.msg("error", "that audio was odd");
    assert.deepEqual(page.state.notice, { text: "that audio was odd", fatal: false });
    assert.deepEqual(timer(fx, "notice"), { type: "timer", name: "notice", ms: 10000 });
    page.on({ type: "timer", name: "notice" });
    assert.deepEqual(page.state.notice, { text: "", fatal: false });
    assert.deepEqual(page.state.errors, ["that audio was odd"]);
  });

  it("on a session that is not ready keep it 'cannot run'", () => {
    const page = new Page();
    page.on({ type: "open" });
    page.msg("session", { ready: false, problems: ["no key"] });
    const fx = page.msg("error", "The voice pipeline cannot start: no key");
    assert.equal(timer(fx, "notice"), undefined);
    assert.deepEqual(page.state.notice, { text: "The voice pipeline cannot start: no key", fatal: true });
  });

  it("from an older server: fatal straight after connecting, not once the session did something", () => {
    const early = new Page();
    early.on({ type: "open" }, { now: 1000 });
    early.msg("error", "cannot start", { now: 1500 });
    assert.equal(early.state.notice.fatal, true);

    const later = new Page();
    later.on({ type: "open" }, { now: 1000 });
    later.msg("transcript", { text: "hi", is_final: true }, { now: 1200 });
    later.msg("error", "a provider hiccup", { now: 1500 });
    assert.equal(later.state.notice.fatal, false);

    const late = new Page();
    late.on({ type: "open" }, { now: 1000 });
    late.msg("error", "a provider hiccup", { now: 5000 });
    assert.equal(late.state.notice.fatal, false);
  });

  it("followed at once by the socket closing mean the agent cannot run", () => {
    const page = Page.connected();
    page.msg("error", "Deepgram refused the key", { now: 20000 });
    const fx = page.on({ type: "reconnecting", attempt: 1, delay: 480 }, { now: 20500 });
    assert.deepEqual(page.state.notice, { text: "Deepgram refused the key", fatal: true });
    assert.ok(fx.some((e) => e.type === "cancel-timer" && e.name === "notice"), "the fatal notice must stay up");
    page.on({ type: "timer", name: "notice" });
    assert.equal(page.state.notice.fatal, true);
  });
});

describe("the connection", () => {
  it("shows the countdown while reconnecting and stops the reply", () => {
    const page = Page.connected();
    page.msg("status", "generating");
    const fx = page.on({ type: "reconnecting", attempt: 3, delay: 2100 });
    assert.equal(page.state.connection, "reconnecting");
    assert.equal(page.state.connectionDetail, "in 2.1 s (attempt 3)");
    assert.deepEqual(fx, [{ type: "flush" }, { type: "bot-end", interrupted: false }]);
    assert.equal(page.state.notice.fatal, false); // no error came before the drop
  });

  it("forgets the old session on open and opts in to binary audio, once per socket, where the server offers it", () => {
    const page = new Page();
    assert.equal(page.state.options.binary, true); // the default
    page.on({ type: "open" });
    const fx = page.msg("session", { ready: true, features: ["played", "binary_audio"] });
    assert.deepEqual(sent(fx), [{ type: "config", data: { binary_audio: true } }]);
    assert.equal(page.state.binaryAudio, true);
    // a second session message on the same socket (new rates) does not opt in again
    assert.deepEqual(sent(page.msg("session", { ready: true, features: ["binary_audio"], audio_in_rate: 8000 })), []);
    page.on({ type: "reconnecting", attempt: 1, delay: 500 });
    page.on({ type: "connecting" });
    assert.deepEqual(sent(page.on({ type: "open" })), []); // nothing before the new socket's session message
    assert.equal(page.state.session, null);
    assert.equal(page.state.binaryAudio, false); // JSON frames until then
    assert.deepEqual(sent(page.msg("session", { ready: true, features: ["binary_audio"] })), [
      { type: "config", data: { binary_audio: true } },
    ]);
    assert.equal(page.state.binaryAudio, true);
  });

  it("keeps the seed's JSON audio for a server that does not offer binary frames, or when asked (?binary=0)", () => {
    const older = Page.connected({ features: ["played", "playback"] }); // no binary_audio
    assert.equal(older.state.binaryAudio, false);
    const seed = new Page();
    seed.on({ type: "open" });
    assert.deepEqual(sent(seed.msg("status", "connected")), []);
    assert.deepEqual(sent(seed.msg("audio", "AAAA")), []); // a seed server: no session message, never a config
    assert.equal(seed.state.binaryAudio, false);
    const json = new Page({ binary: false });
    json.on({ type: "open" });
    assert.deepEqual(sent(json.msg("session", { ready: true, features: ["binary_audio"] })), []);
    assert.equal(json.state.binaryAudio, false);
  });

  it("with an older server clears a stale 'cannot run' once the new connection started cleanly", () => {
    const page = new Page();
    page.on({ type: "open" }, { now: 1000 });
    page.msg("error", "cannot start", { now: 1100 });
    page.on({ type: "reconnecting", attempt: 1, delay: 500 }, { now: 1200 });
    assert.equal(page.state.fatal, true);
    const fx = page.on({ type: "open" }, { now: 2000 });
    assert.deepEqual(timer(fx, "settle"), { type: "timer", name: "settle", ms: 3000 });
    assert.equal(page.state.notice.fatal, true); // kept until the connection proved itself
    page.on({ type: "timer", name: "settle" }, { now: 5000 });
    assert.equal(page.state.fatal, false);
    assert.deepEqual(page.state.notice, { text: "", fatal: false });
  });

  it("keeps a 'cannot run' the new session confirms", () => {
    const page = new Page();
    page.on({ type: "open" });
    page.msg("session", { ready: false, problems: ["no key"] });
    page.on({ type: "reconnecting", attempt: 1, delay: 500 });
    page.on({ type: "open" });
    page.msg("session", { ready: false, problems: ["no key"] });
    page.on({ type: "timer", name: "settle" });
    assert.deepEqual(page.state.notice, { text: "no key", fatal: true });
  });
});

describe("metrics", () => {
  it("land on their turn by number, else on the newest turn without one", () => {
    const page = Page.connected();
    page.msg("status", "generating");
    page.msg("metrics", { turn: 1, stt_ms: 150, llm_ttft_ms: null, voice_to_voice_ms: 800 });
    page.msg("status", "complete");
    page.msg("status", "generating");
    page.msg("metrics", { turn: 1, llm_ttft_ms: 400 }); // late figure for turn 1
    page.msg("metrics", { turn: 2, stt_ms: 90 });
    assert.deepEqual(
      page.state.turns.map((t) => [t.label, t.serverTurn, t.metrics]),
      [
        [1, 1, { turn: 1, stt_ms: 150, voice_to_voice_ms: 800, llm_ttft_ms: 400 }],
        [2, 2, { turn: 2, stt_ms: 90 }],
      ],
    );
  });

  it("for a turn the page never saw start get a row of their own", () => {
    const page = Page.connected();
    page.msg("metrics", { turn: 4, stt_ms: 100 });
    assert.deepEqual(page.state.turns.map((t) => [t.label, t.serverTurn]), [[1, 4]]);
  });

  it("keep the last 8 turns, numbered on", () => {
    const page = Page.connected();
    for (let i = 0; i < 10; i++) {
      page.msg("status", "generating");
      page.msg("status", "complete");
    }
    assert.deepEqual(page.state.turns.map((t) => t.label), [3, 4, 5, 6, 7, 8, 9, 10]);
  });
});

describe("robustness", () => {
  it("ignores messages of unknown types (the protocol grows additively) and non-messages", () => {
    const page = Page.connected();
    const before = page.state;
    assert.deepEqual(page.msg("future_thing", { x: 1 }), []);
    assert.deepEqual(page.state.messages.future_thing, 1);
    for (const junk of [null, 3, "status", { data: 1 }, { type: 5 }]) {
      assert.deepEqual(page.on({ type: "message", message: junk }), []);
    }
    assert.deepEqual({ ...page.state, messages: before.messages }, before);
  });

  it("takes no inherited property for a handler", () => {
    const page = Page.connected();
    for (const name of ["__proto__", "constructor", "toString", "hasOwnProperty"]) {
      assert.deepEqual(page.msg(name, {}), []);
      assert.deepEqual(page.msg("status", name), []);
      assert.deepEqual(page.on(/** @type {any} */ ({ type: name })), []);
    }
    assert.equal(page.state.messages.constructor, 1);
    assert.equal(Object.getOwnPropertyDescriptor(page.state.messages, "__proto__")?.value, 1);
  });

  it("keeps the last 200 errors and replies", () => {
    const page = Page.connected();
    for (let i = 0; i < 205; i++) {
      page.msg("status", "generating");
      page.msg("text_chunk", `r${i}`);
      page.msg("error", `e${i}`);
    }
    assert.equal(page.state.errors.length, 200);
    assert.equal(page.state.replies.length, 200);
    assert.equal(page.state.replies[0], "r5");
  });

  it("tolerates odd data in known messages", () => {
    const page = Page.connected();
    assert.deepEqual(page.msg("transcript", null), [{ type: "user-text", text: "", final: false }]);
    assert.deepEqual(page.msg("metrics", "nope"), []);
    assert.deepEqual(page.msg("speaking", null), []);
    page.msg("session", null);
    assert.deepEqual(page.state.rates, DEFAULT_RATES);
  });

  it("never modifies the state it is given (every state above was deep-frozen)", () => {
    // Page freezes each state it hands to step(): any in-place write in a handler throws in strict mode. This
    // runs one of everything through it once more, in one session.
    const page = new Page({ binary: true });
    page.on({ type: "connecting" });
    page.on({ type: "open" });
    page.msg("session", { ready: true, audio_in_rate: 8000 });
    page.on({ type: "mic", on: true });
    page.msg("speaking", { who: "user", state: "started" });
    page.msg("transcript", { text: "hi", is_final: true });
    page.msg("status", "generating");
    page.msg("text_chunk", "x");
    page.msg("audio", "AAAA");
    page.on({ type: "scheduled", start: 3, latency: 0 }, { voicedEnd: 2 });
    page.on({ type: "speech-start", botPlaying: true }, { playing: true });
    page.msg("status", "interrupted");
    page.msg("metrics", { turn: 1, stt_ms: 1 });
    page.on({ type: "typed", text: "t" }, { playing: true });
    page.on({ type: "playback-idle" });
    page.msg("error", "e");
    page.on({ type: "timer", name: "notice" });
    page.on({ type: "reconnecting", attempt: 1, delay: 500 });
    page.on({ type: "closed" });
    assert.equal(page.state.connection, "closed");
    assert.equal(page.state.agent, "Your turn.");
  });
});

describe("stage errors", () => {
  it("keep each stage's last provider error, and a new connection starts clean", () => {
    const page = Page.connected();
    page.msg("stage_error", { stage: "tts", provider: "deepgram", message: "Deepgram TTS: HTTP 401", at: 1700000000.5 });
    page.msg("stage_error", { stage: "stt", provider: "deepgram", message: "first", at: 1 });
    page.msg("stage_error", { stage: "stt", provider: "deepgram", message: "second", at: 2 });
    assert.deepEqual(page.state.stageErrors, {
      tts: { provider: "deepgram", message: "Deepgram TTS: HTTP 401", at: 1700000000.5 },
      stt: { provider: "deepgram", message: "second", at: 2 },
    });
    page.on({ type: "open" });
    assert.deepEqual(page.state.stageErrors, {});
  });

  it("ignore a malformed one", () => {
    const page = Page.connected();
    for (const data of [null, "oops", { provider: "x" }, { stage: 3 }]) page.msg("stage_error", data);
    assert.deepEqual(page.state.stageErrors, {});
    assert.equal(page.state.messages.stage_error, 4);
  });
});
