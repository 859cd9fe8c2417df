// @ts-check
// The page's audio: one AudioContext (created on a user gesture), the player, the microphone and the speech
// detector that listens to it. It reports what happens (speech started, playback went idle, a problem) as
// protocol events through `dispatch` and answers the state machine's questions through facts().

import { fromBase64 } from "./codec.js";
import { Mic } from "./mic.js";
import { Player } from "./player.js";
import { SpeechDetector } from "./speech.js";

const ONSET_S = 0.4; // start of each reply during which the speech detector measures the echo coupling
const METER_LOG = 500; // playback meter readings kept for the tests

/** @typedef {import("./protocol-state.js").Event} Event */

export class AudioSide {
  /**
   * @param {object} options
   * @param {boolean} options.raw     microphone without echo cancellation / noise suppression / auto gain
   * @param {{in: number, out: number}} options.rates
   * @param {(pcm: Int16Array) => void} options.sendFrame   the uplink
   * @param {(event: Event) => void} options.dispatch
   */
  constructor({ raw, rates, sendFrame, dispatch }) {
    this.raw = raw;
    this.rates = rates;
    this.sendFrame = sendFrame;
    this.dispatch = dispatch;
    /** @type {AudioContext | null} */
    this.ctx = null;
    /** @type {Promise<void> | null} */
    this.ready = null;
    /** @type {Player | null} */
    this.player = null;
    /** @type {Mic | null} */
    this.mic = null;
    this.micStarting = false;
    this.micRms = 0;
    this.botPeak = 0; // recent peak of the playback meter: how loud the agent is right now
    this.playStartedAt = 0;
    /** @type {number | null} */
    this.lastSpeechStart = null; // audio-clock time the detector last heard speech start (for the tests)
    /** @type {Array<[number, number]>} */
    this.meterLog = [];
    /** @type {Array<[number, number]>} */
    this.micLog = []; // recent [audioTime, rms] of the microphone frames (for the tests)
    this.detector = new SpeechDetector({
      onStart: (time, botPlaying) => {
        this.lastSpeechStart = time;
        this.dispatch({ type: "speech-start", botPlaying });
      },
    });
  }

  /** Create (once) and resume the AudioContext. Call it synchronously from a user gesture. */
  ensure() {
    if (!this.ctx) {
      const ctx = new AudioContext({ latencyHint: "interactive" });
      this.ctx = ctx;
      const worklets = ctx.audioWorklet
        ? ctx.audioWorklet.addModule(new URL("./worklets.js", import.meta.url))
        : Promise.reject(new Error("this browser offers no AudioWorklet here (is the page secure?)"));
      this.ready = worklets.then(() => {
        this.player = new Player(ctx, {
          rate: this.rates.out,
          onLevel: (rms, time) => this.onPlaybackLevel(rms, time),
          onStart: (at) => (this.playStartedAt = at),
          onIdle: () => this.dispatch({ type: "playback-idle" }),
        });
      });
      this.ready.catch((err) => this.dispatch({ type: "local-error", text: `Audio unavailable: ${err.message || err}` }));
    }
    if (this.ctx.state !== "running") this.ctx.resume();
    return /** @type {Promise<void>} */ (this.ready);
  }

  /** Start the microphone; resolves to whether it is on. */
  async startMic() {
    try {
      await this.ensure();
      const mic = new Mic(/** @type {AudioContext} */ (this.ctx), {
        raw: this.raw,
        rate: this.rates.in,
        onFrame: (pcm, rms, time) => this.onMicFrame(pcm, rms, time),
      });
      await mic.start();
      this.mic = mic;
      this.dispatch({ type: "mic", on: true });
      return true;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.dispatch({ type: "local-error", text: `Microphone unavailable: ${message}` });
      return false;
    }
  }

  stopMic() {
    if (this.mic) this.mic.stop();
    this.mic = null;
    this.micRms = 0;
    this.dispatch({ type: "mic", on: false });
  }

  /**
   * Rates from the session message: playback of the next chunk, capture from the next frame on.
   * @param {{in: number, out: number}} rates
   */
  setRates(rates) {
    this.rates = rates;
    if (this.player) this.player.rate = rates.out;
    if (this.mic) this.mic.setRate(rates.in);
  }

  /**
   * Schedule one base64 chunk; returns when the current reply's first sample plays and the output latency.
   * @param {string} b64
   */
  play(b64) {
    const player = /** @type {Player} */ (this.player);
    const ctx = /** @type {AudioContext} */ (this.ctx);
    player.enqueue(fromBase64(b64));
    return { start: player.firstStartTime, latency: ctx.outputLatency || ctx.baseLatency || 0 };
  }

  flush() {
    if (this.player) this.player.flush();
  }

  newResponse() {
    if (this.player) this.player.newResponse();
  }

  pause() {
    if (this.player) this.player.pause();
  }

  resume() {
    if (this.player) this.player.resume();
  }

  newEpoch() {
    if (this.player) this.player.newEpoch();
  }

  /** What the protocol machine needs to know about audio at this instant. */
  facts() {
    const d = this.detector;
    return {
      audioTime: this.ctx ? this.ctx.currentTime : null,
      audioReady: this.player !== null,
      playing: Boolean(this.player && this.player.playing),
      voicedEnd: d.voicedSeen ? d.lastVoicedEnd : null,
      played: this.player ? this.player.played() : 0,
    };
  }

  /**
   * @param {number} rms
   * @param {number} time
   */
  onPlaybackLevel(rms, time) {
    this.botPeak = Math.max(rms, this.botPeak * 0.8);
    this.meterLog.push([time, rms]);
    if (this.meterLog.length > METER_LOG) this.meterLog.splice(0, 100);
  }

  /**
   * @param {Int16Array} pcm
   * @param {number} rms
   * @param {number} time
   */
  onMicFrame(pcm, rms, time) {
    this.micRms = rms;
    this.micLog.push([time, rms]);
    if (this.micLog.length > METER_LOG) this.micLog.splice(0, 100);
    const playing = Boolean(this.player && this.player.playing);
    const onset = playing && time - this.playStartedAt < ONSET_S;
    this.detector.push(rms, time, { playing, level: this.botPeak, onset });
    this.sendFrame(pcm);
  }
}
