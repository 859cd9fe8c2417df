// The page's protocol state machine (apps/voice_agent/static/protocol.js), driven with plain objects: server
// messages and user actions in, state and effects out. Run: node --test tests/js/
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { DEFAULT_RATES, initialState, ratesOf, step } from "../../apps/voice_agent/static/protocol.js";

/** @typedef {import("../../apps/voice_agent/static/protocol-state.js").State} State */
/** @typedef {import("../../apps/voice_agent/static/protocol-state.js").World} World */
/** @typedef {import("../../apps/voice_agent/static/protocol-state.js").Effect} Effect */
/** @typedef {import("../../apps/voice_agent/static/protocol-state.js").Event} Event */

/** @type {World} */
const WORLD = { now: 1000, audioTime: 1, audioReady: true, playing: false, online: true, voicedEnd: null };

/**
 * Freeze a state all the way down: a handler that modified its input instead of copying would throw.
 * @template T
 * @param {T} value
 * @returns {T}
 */
function deepFreeze(value) {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** A page: threads the state through events, keeps every effect, and lets a test change the world. */
class Page {
  /** @param {{binary?: boolean}} [options] */
  constructor(options) {
    /** @type {State} */
    this.state = deepFreeze(initialState(options));
    /** @type {World} */
    this.world = { ...WORLD };
    /** @type {Effect[]} */
    this.effects = [];
  }

  /**
   * @param {Event} event
   * @param {Partial<World>} [world]  facts for this event only
   * @returns {Effect[]} this event's effects
   */
  on(event, world = {}) {
    const out = step(this.state, event, { ...this.world, ...world });
    this.state = deepFreeze(out.state);
    this.effects.push(...out.effects);
    return out.effects;
  }

  /**
   * @param {string} type
   * @param {unknown} [data]
   * @param {Partial<World>} [world]
   */
  msg(type, data, world) {
    return this.on({ type: "message", message: { type, data } }, world);
  }

  /** A connected page that has its session (ready, default rates). */
  static connected(session = {}) {
    const page = new Page();
    page.on({ type: "open" });
    page.msg("status", "connected");
    page.msg("session", { engines: { stt: "deepgram", llm: "gemini", tts: "deepgram" }, ready: true, problems: [], ...session });
    page.effects = [];
    return page;
  }
}

/** @param {Effect[]} effects */
const types = (effects) => effects.map((e) => e.type);
/** @param {Effect[]} effects */
const sent = (effects) => effects.flatMap((e) => (e.type === "send" ? [e.message] : []));
/** @param {Effect[]} effects @param {string} name */
const timer = (effects, name) => effects.find((e) => e.type === "timer" && e.name === name);

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

  it("forgets the old session on open and opts in to binary audio when asked", () => {
    const page = new Page({ binary: true });
    page.on({ type: "open" });
    page.msg("session", { ready: true });
    page.on({ type: "reconnecting", attempt: 1, delay: 500 });
    page.on({ type: "connecting" });
    const fx = page.on({ type: "open" });
    assert.equal(page.state.session, null);
    assert.deepEqual(sent(fx), [{ type: "config", data: { binary_audio: true } }]);
    assert.deepEqual(sent(Page.connected().effects), []);
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
