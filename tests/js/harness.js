// A scripted page for the protocol machine's tests: threads the state through step(), deep-freezing every state
// (a handler that wrote into its input would throw), keeps the effects, and lets a test set the world per event.
import { initialState, step } from "../../apps/voice_agent/static/protocol.js";

/** @typedef {import("../../apps/voice_agent/static/protocol-state.js").State} State */
/** @typedef {import("../../apps/voice_agent/static/protocol-state.js").World} World */
/** @typedef {import("../../apps/voice_agent/static/protocol-state.js").Effect} Effect */
/** @typedef {import("../../apps/voice_agent/static/protocol-state.js").Event} Event */

/** @type {World} */
export const WORLD = { now: 1000, audioTime: 1, audioReady: true, playing: false, online: true, voicedEnd: null };

/**
 * Freeze a state all the way down: a handler that modified its input instead of copying would throw.
 * @template T
 * @param {T} value
 * @returns {T}
 */
export function deepFreeze(value) {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** A page: threads the state through events, keeps every effect, and lets a test change the world. */
export class Page {
  /** @param {{binary?: boolean, bargeIn?: string}} [options] */
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
export const types = (effects) => effects.map((e) => e.type);
/** @param {Effect[]} effects */
export const sent = (effects) => effects.flatMap((e) => (e.type === "send" ? [e.message] : []));
/** @param {Effect[]} effects @param {string} name */
export const timer = (effects, name) => effects.find((e) => e.type === "timer" && e.name === name);
