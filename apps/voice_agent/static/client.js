// @ts-check
// Binds the protocol state machine (protocol.js) to the page: it feeds the machine events from the socket,
// the audio and the controls, carries out the effects it returns (send, play, flush, timers, conversation
// bubbles) and renders whatever part of its state changed. The decisions are all in protocol.js.

import { AudioSide } from "./audio.js";
import { Connection } from "./connection.js";
import { initialState, socketUrl, step } from "./protocol.js";
import { Conversation, Waterfall, setAgentState, setMeter, showConnection, showError, showSession, showStageErrors } from "./ui.js";
import { Uplink } from "./uplink.js";

/** @typedef {import("./protocol.js").State} State */
/** @typedef {import("./protocol.js").Event} Event */
/** @typedef {import("./protocol.js").Effect} Effect */

const TICK_MS = 100; // how often a playing page reports its playback position (`played`)

export class Client {
  /**
   * @param {object} options
   * @param {string} options.url      the /ws address
   * @param {boolean} options.raw     microphone without audio processing (?raw=1)
   * @param {boolean} options.binary  send microphone frames as binary messages where the server offers them
   *                                  (false: ?binary=0, the seed's base64 JSON)
   * @param {string | null} [options.bargeIn]  who interrupts when the user talks over the agent (?bargein=)
   */
  constructor({ url, raw, binary, bargeIn = null }) {
    /** @type {State} */
    this.state = initialState({ binary, bargeIn });
    /** @type {Map<string, ReturnType<typeof setTimeout>>} */
    this.timers = new Map();
    this.url = url;
    this.conn = new Connection(url, {
      onMessage: (message) => this.dispatch({ type: "message", message }),
      onState: (state, attempt, code, delay) => this.onConnection(state, attempt, code, delay),
    });
    this.uplink = new Uplink(this.conn); // JSON until a connection opts in to binary (state.binaryAudio)
    this.audio = new AudioSide({
      raw,
      rates: this.state.rates,
      sendFrame: (pcm) => this.uplink.send(pcm),
      dispatch: (event) => this.dispatch(event),
    });
    this.conversation = new Conversation();
    this.waterfall = new Waterfall();
  }

  /** Render the initial state, wire the controls and connect. */
  start() {
    this.render(null);
    this.bindControls();
    const meters = () => {
      setMeter("mic-meter", this.audio.micRms);
      setMeter("bot-meter", this.audio.player ? this.audio.player.level : 0);
      requestAnimationFrame(meters);
    };
    requestAnimationFrame(meters);
    // Every 100 ms while the agent's audio plays: the machine tells the server how much has been heard.
    setInterval(() => {
      if (this.audio.player && this.audio.player.playing) this.dispatch({ type: "tick" });
    }, TICK_MS);
    this.conn.start();
  }

  /**
   * Run one event through the machine, then its effects, then render what changed.
   * @param {Event} event
   */
  dispatch(event) {
    const prev = this.state;
    const world = { now: performance.now(), online: this.conn.isOpen, ...this.audio.facts() };
    const { state, effects } = step(prev, event, world);
    this.state = state;
    for (const effect of effects) this.run(effect);
    this.uplink.binary = state.binaryAudio; // after the effects: the `config` has gone out before any binary frame
    this.render(prev);
  }

  /** @param {Effect} effect */
  run(effect) {
    switch (effect.type) {
      case "send":
        this.conn.send(effect.message);
        return;
      case "play": {
        const { start, latency } = this.audio.play(effect.audio);
        this.dispatch({ type: "scheduled", start, latency });
        return;
      }
      case "flush":
        this.audio.flush();
        return;
      case "new-response":
        this.audio.newResponse();
        return;
      case "pause":
        this.audio.pause();
        return;
      case "resume":
        this.audio.resume();
        return;
      case "epoch":
        this.audio.newEpoch();
        return;
      case "timer":
        clearTimeout(this.timers.get(effect.name));
        this.timers.set(
          effect.name,
          setTimeout(() => {
            this.timers.delete(effect.name);
            this.dispatch({ type: "timer", name: effect.name });
          }, effect.ms),
        );
        return;
      case "cancel-timer":
        clearTimeout(this.timers.get(effect.name));
        this.timers.delete(effect.name);
        return;
      case "user-text":
        this.conversation.transcript(effect.text, effect.final);
        return;
      case "user-typed":
        this.conversation.typed(effect.text);
        /** @type {HTMLInputElement} */ (document.getElementById("typed-input")).value = "";
        return;
      case "bot-start":
        this.conversation.startBot();
        return;
      case "bot-text":
        this.conversation.chunk(effect.text);
        return;
      case "bot-end":
        this.conversation.endBot(effect.interrupted);
        return;
      case "reconnect-now":
        // After the connection has scheduled its backoff retry (this runs inside its close handler).
        setTimeout(() => this.conn.retryNow(), 0);
        return;
      default:
        unhandled(effect); // tsc fails here when an Effect type has no case above
    }
  }

  /**
   * Draw the parts of the state that changed since `prev` (everything when it is null).
   * @param {State | null} prev
   */
  render(prev) {
    const s = this.state;
    if (!prev || s.connection !== prev.connection || s.connectionDetail !== prev.connectionDetail) {
      showConnection(s.connection, s.connectionDetail);
    }
    if (!prev || s.notice !== prev.notice) showError(s.notice.text, s.notice.fatal);
    if (!prev || s.agent !== prev.agent) setAgentState(s.agent);
    if (s.session && (!prev || s.session !== prev.session)) showSession(s.session);
    if (!prev || s.stageErrors !== prev.stageErrors) showStageErrors(s.stageErrors);
    if (!prev || s.turns !== prev.turns) this.waterfall.render(s.turns);
    if (prev && s.rates !== prev.rates) this.audio.setRates(s.rates);
  }

  /**
   * @param {import("./protocol-state.js").ConnectionState} state
   * @param {number} attempt
   * @param {number} [code]   the close code of the socket that dropped
   * @param {number} [delay]
   */
  onConnection(state, attempt, code, delay) {
    if (state === "reconnecting") this.dispatch({ type: "reconnecting", attempt, delay: delay || 0, code });
    else this.dispatch({ type: state });
    // The socket is made right after "connecting": its address carries the resume token the machine keeps.
    if (state === "connecting") this.conn.url = socketUrl(this.url, this.state);
  }

  bindControls() {
    const byId = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
    const talk = byId("talk");
    talk.addEventListener("click", () => (this.audio.mic ? this.stopMic(talk) : this.startMic(talk)));
    byId("interrupt").addEventListener("click", () => {
      this.audio.ensure();
      this.dispatch({ type: "interrupt", reason: "button" });
    });
    byId("retry").addEventListener("click", () => this.conn.retryNow());
    byId("typed").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const text = /** @type {HTMLInputElement} */ (byId("typed-input")).value.trim();
      if (!text) return;
      this.audio.ensure(); // in the gesture: the AudioContext may start now
      this.dispatch({ type: "typed", text });
    });
  }

  /** @param {HTMLElement} talk */
  async startMic(talk) {
    // Not `disabled`: that would drop keyboard focus from the button while the permission prompt is up.
    if (this.audio.micStarting) return;
    this.audio.micStarting = true;
    talk.setAttribute("aria-busy", "true");
    try {
      if (await this.audio.startMic()) {
        talk.setAttribute("aria-pressed", "true");
        talk.textContent = "Stop talking";
      }
    } finally {
      this.audio.micStarting = false;
      talk.removeAttribute("aria-busy");
    }
  }

  /** @param {HTMLElement} talk */
  stopMic(talk) {
    this.audio.stopMic();
    talk.setAttribute("aria-pressed", "false");
    talk.textContent = "Start talking";
  }
}

/**
 * @param {never} effect
 * @returns {never}
 */
function unhandled(effect) {
  throw new Error(`unknown effect ${JSON.stringify(effect)}`);
}
