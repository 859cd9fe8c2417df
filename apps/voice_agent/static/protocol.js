// @ts-check
// The page's side of the /ws protocol as a pure state machine: step(state, event, world) -> {state, effects}.
//
// Everything the page decides lives here: what a server message means (a reply starts, is cut, an error is
// fatal or not), what an interrupt does, when audio still in flight is ignored, how turns and their latency
// figures are kept. It touches no DOM, socket, timer or audio node, so Node's test runner drives it with plain
// objects (tests/js/). client.js carries the effects out and renders the state.
//
// Inputs are events (server messages, connection changes, user actions, timers that fired) plus a `world`
// snapshot of the facts the page's audio and socket know at that instant (clocks, whether audio is playing).
// Outputs are a new state (the old one is never modified: copy on write) and a list of effects. Timers are
// effects too: {type: "timer", name, ms} asks for a {type: "timer", name} event later; the same name replaces.
//
// The state's shape and helpers are in protocol-state.js; docs/browser-client.md says how to add a message.

import {
  MAX_KEPT,
  addTurn,
  endReply,
  pageBargesIn,
  ratesOf,
  send,
  serverDoes,
  showFatal,
  updateTurn,
  userTurnEnd,
} from "./protocol-state.js";

export { DEFAULT_RATES, initialState, pageBargesIn, ratesOf, serverDoes, userTurnEnd } from "./protocol-state.js";

/** @typedef {import("./protocol-state.js").State} State */
/** @typedef {import("./protocol-state.js").World} World */
/** @typedef {import("./protocol-state.js").Effect} Effect */
/** @typedef {import("./protocol-state.js").Event} Event */

const DROP_AFTER_INTERRUPT_MS = 1500; // longest wait for the server to confirm our interrupt
const ERROR_SHOWN_MS = 10000; // a non-fatal error stays up this long
const EARLY_ERROR_MS = 3000; // servers without session.ready: an error this soon after connecting is fatal
const ERROR_BEFORE_CLOSE_MS = 2000; // an error this soon before the socket closes is fatal
const SERVICE_RESTART = 1012; // the close code of a draining server: reconnect at once, to another one
const RESUME_FAILED = "The server could not continue your conversation (it waited too long); this is a new one.";

/**
 * The /ws address for the next connection: `base`, plus the resume token of the last session, if any, so the
 * server brings the conversation back (docs/protocol.md, "Resuming").
 * @param {string} base
 * @param {State} state
 * @returns {string}
 */
export function socketUrl(base, state) {
  if (state.resumeToken === null) return base;
  return `${base}${base.includes("?") ? "&" : "?"}resume=${encodeURIComponent(state.resumeToken)}`;
}

/**
 * One step of the machine. `state` is not modified.
 * @param {State} state
 * @param {Event} event
 * @param {World} world
 * @returns {{state: State, effects: Effect[]}}
 */
export function step(state, event, world) {
  const s = { ...state };
  /** @type {Effect[]} */
  const effects = [];
  if (Object.hasOwn(EVENTS, event.type)) {
    const handler = /** @type {(s: State, e: Event, w: World, fx: Effect[]) => void} */ (EVENTS[event.type]);
    handler(s, event, world, effects);
  }
  return { state: s, effects };
}

// ------------------------------------------------------------------------------------------------ events

/**
 * One handler per event type (tsc fails when an Event member has none); each gets its own event type.
 * @type {{[K in Event["type"]]: (s: State, e: Extract<Event, {type: K}>, w: World, fx: Effect[]) => void}}
 */
const EVENTS = {
  message(s, e, w, fx) {
    const msg = /** @type {{type?: unknown, data?: unknown} | null} */ (e.message);
    if (!msg || typeof msg !== "object" || typeof msg.type !== "string") return;
    const type = msg.type;
    s.messages = { ...s.messages, [type]: (Object.hasOwn(s.messages, type) ? s.messages[type] : 0) + 1 };
    if (type === "transcript" || type === "text_chunk" || type === "audio") s.activeSinceOpen = true;
    // Unknown types are ignored: the protocol only grows additively. (Own keys only: "constructor" is no type.)
    if (Object.hasOwn(SERVER, type)) SERVER[type](s, msg.data, w, fx);
  },

  connecting(s) {
    s.connection = "connecting";
    s.connectionDetail = "";
    s.resumeAsked = s.resumeToken !== null; // client.js builds the address from this state (socketUrl)
  },

  open(s, _e, w, fx) {
    s.connection = "open";
    s.connectionDetail = "";
    s.openedAt = w.now;
    s.activeSinceOpen = false;
    s.session = null; // this connection's session message says afresh whether it can run
    s.playback = { epoch: null, paused: false };
    s.stageErrors = {}; // ... and its stages have not failed yet
    s.draining = false;
    if (!s.fatal) s.notice = { text: "", fatal: false };
    // Older servers (no session.ready): a "cannot run" from an earlier connection stays up until this one has
    // started cleanly.
    fx.push({ type: "timer", name: "settle", ms: EARLY_ERROR_MS });
    s.binaryAudio = false; // a new socket: JSON audio until its session message offers binary frames
  },

  reconnecting(s, e, w, fx) {
    s.connection = "reconnecting";
    s.playback = { epoch: null, paused: false };
    fx.push({ type: "flush" }, { type: "bot-end", interrupted: false });
    if (s.draining || e.code === SERVICE_RESTART) {
      // The server restarted after finishing our reply: go to another one now, no backoff, nothing fatal.
      s.draining = false;
      s.connectionDetail = "now (the server restarted)";
      fx.push({ type: "reconnect-now" });
      return;
    }
    // An error followed at once by the server closing the socket means the agent cannot start at all.
    const lastError = s.errors[s.errors.length - 1];
    if (lastError !== undefined && w.now - s.lastErrorAt < ERROR_BEFORE_CLOSE_MS) showFatal(s, fx, lastError);
    s.connectionDetail = `in ${(e.delay / 1000).toFixed(1)} s (attempt ${e.attempt})`;
  },

  closed(s) {
    s.connection = "closed";
    s.connectionDetail = "";
  },

  /** Barge-in, the Interrupt button or a typed turn over the reply: silence now, tell the server. */
  interrupt(s, e, w, fx) {
    const replying = w.playing || s.server === "generating";
    if (replying) reportPlayed(s, w, fx); // what was heard, before the flush (the server cuts its context to it)
    fx.push({ type: "flush" });
    s.playback = { ...s.playback, paused: false };
    if (w.online) {
      send(fx, "interrupt");
      s.counts = { ...s.counts, interruptsSent: s.counts.interruptsSent + 1 };
    }
    // Audio of the cut reply may already be in flight: ignore it until the server confirms.
    s.dropping = true;
    fx.push({ type: "timer", name: "drop", ms: DROP_AFTER_INTERRUPT_MS });
    s.lastInterrupt = { reason: e.reason, time: w.audioTime };
    endReply(s, fx, replying);
  },

  typed(s, e, w, fx) {
    if (w.playing) EVENTS.interrupt(s, { type: "interrupt", reason: "typed" }, w, fx);
    if (!w.online) {
      s.notice = { text: "Not connected — your message was not sent.", fatal: false };
      return;
    }
    send(fx, "text", e.text);
    s.typedAt = w.audioTime;
    fx.push({ type: "user-typed", text: e.text });
  },

  /**
   * The user started speaking. Over the agent: the page interrupts by itself only when the server would not
   * (`pageBargesIn`); a server that barges in by itself also tells a backchannel, a cough or the agent's own echo
   * from a barge-in, which a level check cannot.
   */
  "speech-start"(s, e, w, fx) {
    s.agent = "Listening…";
    if (!e.botPlaying) return;
    if (pageBargesIn(s)) {
      s.counts = { ...s.counts, bargeIns: s.counts.bargeIns + 1 };
      EVENTS.interrupt(s, { type: "interrupt", reason: "barge-in" }, w, fx);
    } else {
      s.counts = { ...s.counts, speechOverBot: s.counts.speechOverBot + 1 };
    }
  },

  mic(s, e) {
    s.agent = e.on ? "Listening… speak now." : "Microphone off.";
  },

  "playback-idle"(s, _e, w, fx) {
    s.agent = "Your turn.";
    reportPlayed(s, w, fx); // all of it
  },

  /** Every ~100 ms: while the agent's audio plays, tell the server how much of it has been heard. */
  tick(s, _e, w, fx) {
    if (w.playing && !s.playback.paused) reportPlayed(s, w, fx);
  },

  /** The player scheduled a chunk; `start` is when the current reply's first sample plays (audio clock). */
  scheduled(s, e, w) {
    const turn = s.turns.find((t) => t.label === s.current);
    if (!turn || turn.clientV2v !== null || e.start === null) return;
    const ref = userTurnEnd(s, w);
    if (ref === null || e.start <= ref) return;
    updateTurn(s, turn.label, { clientV2v: (e.start + e.latency - ref) * 1000 });
  },

  "local-error"(s, e) {
    s.notice = { text: e.text, fatal: false };
  },

  timer(s, e, w) {
    if (e.name === "drop") s.dropping = false;
    else if (e.name === "notice" && !s.notice.fatal) s.notice = { text: "", fatal: false };
    else if (e.name === "settle") {
      const told = s.session !== null && typeof s.session.ready === "boolean";
      if (s.fatal && !told && s.openedAt !== null && s.lastErrorAt < s.openedAt && w.online) {
        s.fatal = false;
        s.notice = { text: "", fatal: false };
      }
    }
  },
};

// ------------------------------------------------------------------------------------------------ server messages

/** @type {Record<string, (s: State, data: any, w: World, fx: Effect[]) => void>} */
const SERVER = {
  status(s, data, w, fx) {
    const wasGenerating = s.server === "generating";
    s.server = String(data);
    if (Object.hasOwn(STATUS, s.server)) STATUS[s.server](s, wasGenerating, w, fx);
  },

  transcript(s, data, _w, fx) {
    const d = data && typeof data === "object" ? data : {};
    s.transcripts = [...s.transcripts, d].slice(-MAX_KEPT);
    fx.push({ type: "user-text", text: String(d.text || ""), final: Boolean(d.is_final) });
  },

  text_chunk(s, data, _w, fx) {
    if (s.dropping) return;
    const text = String(data);
    s.replies = [...s.replies.slice(0, -1), s.replies[s.replies.length - 1] + text];
    fx.push({ type: "bot-text", text });
  },

  audio(s, data, w, fx) {
    const dropped = s.dropping || !w.audioReady;
    s.counts = {
      ...s.counts,
      audioChunksReceived: s.counts.audioChunksReceived + 1,
      audioChunksDropped: s.counts.audioChunksDropped + (dropped ? 1 : 0),
    };
    if (!w.audioReady) s.agent = "The agent is speaking — press “Start talking” to hear it.";
    if (dropped) return;
    fx.push({ type: "play", audio: String(data) });
    s.agent = "Speaking… (talk to interrupt)";
  },

  /**
   * Errors are shown for a while; the session goes on. A session the server marked not ready keeps its
   * "cannot run". Servers without `session.ready`: an error straight after connecting, before anything
   * happened, is taken to mean the session could not start.
   */
  error(s, data, w, fx) {
    const text = String(data);
    s.errors = [...s.errors, text].slice(-MAX_KEPT);
    s.lastErrorAt = w.now;
    const ready = s.session ? s.session.ready : undefined;
    const early = s.openedAt !== null && s.openedAt > 0 && w.now - s.openedAt < EARLY_ERROR_MS;
    const fatal = ready === false || (ready === undefined && early && !s.activeSinceOpen);
    s.fatal = fatal;
    s.notice = { text, fatal };
    fx.push({ type: "cancel-timer", name: "notice" });
    if (!fatal) fx.push({ type: "timer", name: "notice", ms: ERROR_SHOWN_MS });
  },

  /**
   * The session message names the engines and rates and says whether this session can run (`ready`,
   * `problems`). One that cannot run is shown as "cannot run"; one that can clears an earlier "cannot run".
   */
  session(s, data, _w, fx) {
    const session = data && typeof data === "object" ? data : {};
    s.session = session;
    if (s.options.binary && !s.binaryAudio && serverDoes(s, "binary_audio")) {
      // Raw binary microphone frames from here on (the server parses no JSON and no base64 per frame). Only to
      // a server that offers them: one that knows only the seed's messages keeps getting JSON audio.
      send(fx, "config", { binary_audio: true });
      s.binaryAudio = true;
    }
    const rates = ratesOf(session);
    if (rates.in !== s.rates.in || rates.out !== s.rates.out) s.rates = rates;
    const asked = s.resumeAsked;
    s.resumeAsked = false;
    s.resumeToken = typeof session.resume_token === "string" && session.resume_token ? session.resume_token : null;
    if (typeof session.ready !== "boolean") return; // an older server: `error` falls back to a timing guess
    if (asked && session.ready && session.resumed === false) {
      s.fatal = false;
      s.notice = { text: RESUME_FAILED, fatal: false };
      fx.push({ type: "cancel-timer", name: "notice" }, { type: "timer", name: "notice", ms: ERROR_SHOWN_MS });
      return;
    }
    fx.push({ type: "cancel-timer", name: "notice" });
    s.fatal = !session.ready;
    const problems = Array.isArray(session.problems) ? session.problems.join("; ") : "";
    s.notice = session.ready ? { text: "", fatal: false } : { text: problems || "the server did not say why", fatal: true };
  },

  metrics(s, data) {
    if (!data || typeof data !== "object") return;
    const byNumber = data.turn !== undefined && data.turn !== null ? s.turns.find((t) => t.serverTurn === data.turn) : undefined;
    const turn = byNumber || [...s.turns].reverse().find((t) => t.serverTurn === null) || addTurn(s, false);
    /** @type {Record<string, number>} */
    const metrics = { ...turn.metrics };
    for (const [k, v] of Object.entries(data)) if (v !== null && v !== undefined) metrics[k] = v;
    const serverTurn = data.turn !== undefined && data.turn !== null ? data.turn : turn.serverTurn;
    updateTurn(s, turn.label, { metrics, serverTurn });
  },

  /** A provider failed: which stage, which provider, its words. Kept per stage (the last one) and shown. */
  stage_error(s, data) {
    if (!data || typeof data !== "object" || typeof data.stage !== "string") return;
    const entry = { provider: String(data.provider || ""), message: String(data.message || ""), at: Number(data.at) || 0 };
    s.stageErrors = { ...s.stageErrors, [data.stage]: entry };
  },

  speaking(s, data) {
    if (data && data.who === "user" && data.state === "started") s.agent = "Listening…";
  },

  /**
   * `start` names the epoch whose audio follows (the page's `played` reports count from it); `pause` holds the
   * agent's audio without dropping it (the server is finding out whether the user is barging in), `resume` plays
   * on from where it stopped.
   */
  playback(s, data, _w, fx) {
    const d = data && typeof data === "object" ? data : {};
    if (d.action === "start" && Number.isInteger(d.epoch) && d.epoch >= 0) {
      s.playback = { epoch: d.epoch, paused: false };
      fx.push({ type: "epoch" });
    } else if (d.action === "pause" && !s.playback.paused) {
      s.playback = { ...s.playback, paused: true };
      s.counts = { ...s.counts, pauses: s.counts.pauses + 1 };
      fx.push({ type: "pause" });
    } else if (d.action === "resume" && s.playback.paused) {
      s.playback = { ...s.playback, paused: false };
      s.counts = { ...s.counts, resumes: s.counts.resumes + 1 };
      fx.push({ type: "resume" });
    }
  },
};

/** @type {Record<string, (s: State, wasGenerating: boolean, w: World, fx: Effect[]) => void>} */
const STATUS = {
  generating(s, _was, w, fx) {
    fx.push({ type: "bot-start" }, { type: "new-response" });
    s.replies = [...s.replies, ""].slice(-MAX_KEPT);
    const typed = s.typedAt !== null && s.typedAt === userTurnEnd(s, w);
    s.current = addTurn(s, typed).label;
    s.agent = "Thinking…";
  },

  complete(_s, _was, _w, fx) {
    fx.push({ type: "bot-end", interrupted: false });
  },

  /** The server is restarting: it finishes this reply, then closes (1012); the page then reconnects at once. */
  draining(s, _was, _w, fx) {
    s.draining = true;
    s.notice = { text: "The server is restarting: the conversation moves to another one after this reply.", fatal: false };
    fx.push({ type: "cancel-timer", name: "notice" });
  },

  interrupted(s, wasGenerating, w, fx) {
    s.counts = { ...s.counts, interruptsReceived: s.counts.interruptsReceived + 1 };
    fx.push({ type: "flush" });
    s.playback = { ...s.playback, paused: false };
    endReply(s, fx, w.playing || wasGenerating);
    fx.push({ type: "cancel-timer", name: "drop" });
    s.dropping = false;
  },
};

// ------------------------------------------------------------------------------------------------ helpers

/**
 * `{"type":"played","data":{"epoch","seconds"}}`: how much of the current epoch's audio has been heard. Sent only
 * to a server that says it takes them (`session.features`), so an older one never sees a message it would refuse.
 * @param {State} s
 * @param {World} w
 * @param {Effect[]} fx
 */
function reportPlayed(s, w, fx) {
  if (s.playback.epoch === null || typeof w.played !== "number" || !w.online || !serverDoes(s, "played")) return;
  send(fx, "played", { epoch: s.playback.epoch, seconds: Math.round(w.played * 1000) / 1000 });
  s.counts = { ...s.counts, playedSent: s.counts.playedSent + 1 };
}
