// @ts-check
// The protocol machine's state (see protocol.js): its shape, its start, and the small copy-on-write helpers the
// handlers use. Plain data only, so tests can build, compare and freeze it.

/** @typedef {"connecting" | "open" | "reconnecting" | "closed"} ConnectionState */

/**
 * @typedef {object} Turn
 * @property {number} label            1, 2, 3... in the order the page saw them
 * @property {Record<string, number>} metrics  the server's `metrics` figures for the turn
 * @property {number | null} clientV2v  ms from the end of the user's turn to the reply's first audible sample
 * @property {number | null} serverTurn the server's `turn` number, once its metrics arrived
 * @property {boolean} typed
 * @property {boolean} interrupted
 */

/**
 * The last provider error of one stage, from a `stage_error` message.
 * @typedef {object} StageError
 * @property {string} provider   the provider that failed (`deepgram`, `gemini`, `whisper` ...)
 * @property {string} message    its error, as the server worded it (never a key)
 * @property {number} at         when, in Unix seconds (server clock)
 */

/**
 * @typedef {object} Counts
 * @property {number} audioChunksReceived
 * @property {number} audioChunksDropped
 * @property {number} interruptsSent
 * @property {number} interruptsReceived
 * @property {number} bargeIns
 * @property {number} playedSent             `played` reports sent
 * @property {number} pauses                 `playback` pauses honoured
 * @property {number} resumes
 * @property {number} speechOverBot          speech starts while the agent played that the page left to the server
 */

/** @typedef {"auto" | "client" | "server"} BargeIn */

/**
 * @typedef {object} State
 * @property {{binary: boolean, bargeIn: BargeIn}} options  page options (?binary=0, ?bargein=)
 * @property {boolean} binaryAudio           this connection opted in to binary microphone frames (`config` sent)
 * @property {ConnectionState} connection
 * @property {string} connectionDetail       e.g. "in 2.1 s (attempt 3)" while reconnecting
 * @property {string} server                 the last `status` the server sent
 * @property {Record<string, any> | null} session  this connection's `session` message (null until it came)
 * @property {{in: number, out: number}} rates     microphone and playback sample rates (from `session`)
 * @property {{text: string, fatal: boolean}} notice  what the error box shows ("" = hidden)
 * @property {boolean} fatal                 the agent cannot run (kept across reconnects until disproved)
 * @property {string} agent                  the one-line agent state under the controls
 * @property {boolean} dropping              after our own interrupt: ignore audio/text until the server confirms
 * @property {number | null} openedAt        wall-clock ms when this connection opened
 * @property {boolean} activeSinceOpen       a transcript, text or audio came on this connection
 * @property {number} lastErrorAt            wall-clock ms of the last `error` (0: none yet)
 * @property {string[]} errors
 * @property {Array<Record<string, any>>} transcripts
 * @property {string[]} replies
 * @property {Turn[]} turns                  the last MAX_TURNS turns, oldest first
 * @property {number} turnsSeen
 * @property {number | null} current        label of the turn whose reply is (or was last) streaming
 * @property {number | null} typedAt         audio-clock time of the last typed turn
 * @property {{reason: string, time: number | null} | null} lastInterrupt
 * @property {Counts} counts
 * @property {Record<string, number>} messages  server messages received, by type
 * @property {{epoch: number | null, paused: boolean}} playback  the epoch whose audio plays (from `playback`
 *   start: what `played` reports name) and whether the server paused it
 * @property {Record<string, StageError>} stageErrors  per stage (`stt`, `llm`, `tts`), its last provider error on this connection
 * @property {boolean} draining              the server said it is restarting (`status: draining`)
 * @property {string | null} resumeToken     from the last `session` message: the next connection resumes with it
 * @property {boolean} resumeAsked           this connection was opened with a resume token
 */

/**
 * What the page's audio and socket know at the moment of an event (client.js builds it).
 * @typedef {object} World
 * @property {number} now                wall clock, ms (performance.now())
 * @property {number | null} audioTime   AudioContext clock, s (null before audio started)
 * @property {boolean} audioReady        the player exists (audio can be played)
 * @property {boolean} playing           agent audio is scheduled or sounding
 * @property {boolean} online            the socket is open (a send would go out)
 * @property {number | null} voicedEnd   audio-clock end of the user's last voiced frame (null: none yet)
 * @property {number} [played]          seconds of the current epoch's audio heard so far
 */

/**
 * @typedef {{type: "send", message: {type: string, data?: unknown}}
 *   | {type: "play", audio: string}
 *   | {type: "flush"}
 *   | {type: "new-response"}
 *   | {type: "timer", name: string, ms: number}
 *   | {type: "cancel-timer", name: string}
 *   | {type: "user-text", text: string, final: boolean}
 *   | {type: "user-typed", text: string}
 *   | {type: "bot-start"}
 *   | {type: "bot-text", text: string}
 *   | {type: "bot-end", interrupted: boolean}
 *   | {type: "reconnect-now"}
 *   | {type: "pause"}
 *   | {type: "resume"}
 *   | {type: "epoch"}} Effect
 */

/**
 * @typedef {{type: "message", message: unknown}
 *   | {type: "connecting"}
 *   | {type: "open"}
 *   | {type: "reconnecting", attempt: number, delay: number, code?: number}
 *   | {type: "closed"}
 *   | {type: "interrupt", reason: string}
 *   | {type: "typed", text: string}
 *   | {type: "speech-start", botPlaying: boolean}
 *   | {type: "mic", on: boolean}
 *   | {type: "playback-idle"}
 *   | {type: "scheduled", start: number | null, latency: number}
 *   | {type: "local-error", text: string}
 *   | {type: "tick"}
 *   | {type: "timer", name: string}} Event
 */

export const DEFAULT_RATES = Object.freeze({ in: 16000, out: 24000 }); // the seed's fixed formats
const MIN_RATE = 8000;
const MAX_RATE = 96000;
const MAX_TURNS = 8; // turns the waterfall keeps
export const MAX_KEPT = 200; // transcripts, replies and errors kept (for the test hooks): a long session stays small

const BARGE_IN = ["auto", "client", "server"];

/**
 * @param {{binary?: boolean, bargeIn?: string | null}} [options]
 * @returns {State}
 */
export function initialState(options = {}) {
  const bargeIn = /** @type {BargeIn} */ (BARGE_IN.includes(options.bargeIn || "") ? options.bargeIn : "auto");
  return {
    options: { binary: options.binary !== false, bargeIn },
    binaryAudio: false,
    connection: "connecting",
    connectionDetail: "",
    server: "",
    session: null,
    rates: { ...DEFAULT_RATES },
    notice: { text: "", fatal: false },
    fatal: false,
    agent: "Press “Start talking” and speak.",
    dropping: false,
    openedAt: null,
    activeSinceOpen: false,
    lastErrorAt: 0,
    errors: [],
    transcripts: [],
    replies: [""],
    turns: [],
    turnsSeen: 0,
    current: null,
    typedAt: null,
    lastInterrupt: null,
    counts: {
      audioChunksReceived: 0,
      audioChunksDropped: 0,
      interruptsSent: 0,
      interruptsReceived: 0,
      bargeIns: 0,
      playedSent: 0,
      pauses: 0,
      resumes: 0,
      speechOverBot: 0,
    },
    messages: {},
    playback: { epoch: null, paused: false },
    stageErrors: {},
    draining: false,
    resumeToken: null,
    resumeAsked: false,
  };
}

/**
 * Sample rates a `session` message announces; anything missing or implausible keeps the seed's default.
 * @param {Record<string, any> | null | undefined} session
 * @returns {{in: number, out: number}}
 */
export function ratesOf(session) {
  /** @param {unknown} v @param {number} fallback */
  const rate = (v, fallback) => (Number.isInteger(v) && Number(v) >= MIN_RATE && Number(v) <= MAX_RATE ? Number(v) : fallback);
  const data = session || {};
  return { in: rate(data.audio_in_rate, DEFAULT_RATES.in), out: rate(data.audio_out_rate, DEFAULT_RATES.out) };
}

/**
 * When the user's latest turn ended on the audio clock: their last voiced frame, or a typed send.
 * @param {State} s
 * @param {World} w
 */
export function userTurnEnd(s, w) {
  if (w.voicedEnd === null) return s.typedAt;
  return s.typedAt === null ? w.voicedEnd : Math.max(w.voicedEnd, s.typedAt);
}

/**
 * Whether the server named `feature` in this connection's `session` message (`features`).
 * @param {State} s
 * @param {string} feature
 */
export function serverDoes(s, feature) {
  const features = s.session ? s.session.features : undefined;
  return Array.isArray(features) && features.includes(feature);
}

/**
 * Whether the page itself interrupts when the user talks over the agent: `?bargein=client`, or `auto` with a
 * server that does not barge in by itself (it would not hear the user otherwise).
 * @param {State} s
 */
export function pageBargesIn(s) {
  if (s.options.bargeIn !== "auto") return s.options.bargeIn === "client";
  return !serverDoes(s, "server_barge_in");
}

// ------------------------------------------------------------------------------------------------ helpers

/**
 * @param {Effect[]} fx
 * @param {string} type
 * @param {unknown} [data]
 */
export function send(fx, type, data) {
  fx.push({ type: "send", message: data === undefined ? { type } : { type, data } });
}

/**
 * @param {State} s
 * @param {Effect[]} fx
 * @param {string} text
 */
export function showFatal(s, fx, text) {
  s.fatal = true;
  s.notice = { text, fatal: true };
  fx.push({ type: "cancel-timer", name: "notice" });
}

/**
 * The reply is over; `interrupted` marks its bubble and its turn.
 * @param {State} s
 * @param {Effect[]} fx
 * @param {boolean} interrupted
 */
export function endReply(s, fx, interrupted) {
  fx.push({ type: "bot-end", interrupted });
  if (interrupted && s.current !== null) updateTurn(s, s.current, { interrupted: true });
}

/**
 * @param {State} s
 * @param {boolean} typed
 * @returns {Turn}
 */
export function addTurn(s, typed) {
  s.turnsSeen += 1;
  /** @type {Turn} */
  const turn = { label: s.turnsSeen, metrics: {}, clientV2v: null, serverTurn: null, typed, interrupted: false };
  s.turns = [...s.turns, turn].slice(-MAX_TURNS);
  return turn;
}

/**
 * @param {State} s
 * @param {number} label
 * @param {Partial<Turn>} changes
 */
export function updateTurn(s, label, changes) {
  s.turns = s.turns.map((t) => (t.label === label ? { ...t, ...changes } : t));
}
