// @ts-check
// Playback of the agent's Int16 chunks (24 kHz unless the session message says otherwise) through Web Audio.
//
// Chunks arrive over the network with jitter; each becomes an AudioBufferSourceNode scheduled back to back
// on the AudioContext clock. When the queue has run dry the next chunk starts LEAD seconds in the future, which
// is the whole jitter buffer: small enough to keep voice-to-voice latency low, big enough to absorb a late
// packet or two. flush() (barge-in / interrupt) stops every scheduled source at once and resets the clock, so
// nothing the user interrupted is heard afterwards.
//
// The playback chain is sources -> gain -> meter worklet -> destination; the meter reports what is actually
// rendered, which is what the barge-in detector and the tests look at.

const LEAD = 0.08; // seconds of jitter buffer when (re)starting playback

/**
 * @typedef {object} PlayerOptions
 * @property {number} [rate]                        sample rate of the chunks (`session.audio_out_rate`)
 * @property {(at: number) => void} [onStart]      playback (re)starts at audio-clock time `at`
 * @property {() => void} [onIdle]                 nothing is scheduled any more
 * @property {(rms: number, time: number) => void} [onLevel]  the meter's reading of what is rendered
 */

export class Player {
  /**
   * @param {AudioContext} ctx
   * @param {PlayerOptions} [options]
   */
  constructor(ctx, { rate = 24000, onStart, onIdle, onLevel } = {}) {
    this.ctx = ctx;
    this.rate = rate;
    this.gain = ctx.createGain();
    this.meter = new AudioWorkletNode(ctx, "voxline-meter", { numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1] });
    this.gain.connect(this.meter).connect(ctx.destination);
    /** @type {Set<AudioBufferSourceNode>} */
    this.sources = new Set();
    this.nextTime = 0;
    /** @type {number | null} */
    this.carry = null; // a dangling odd byte from the previous chunk
    this.level = 0;
    this.levelTime = 0;
    this.stats = { chunksScheduled: 0, chunksEnded: 0, samplesScheduled: 0, flushes: 0, underruns: 0 };
    /** @type {number | null} */
    this.firstStartTime = null; // audio-clock time at which the current response starts to be heard
    this.onStart = onStart || (() => {});
    this.onIdle = onIdle || (() => {});
    this.meter.port.onmessage = (e) => {
      this.level = e.data.rms;
      this.levelTime = e.data.time;
      if (onLevel) onLevel(e.data.rms, e.data.time);
    };
  }

  get active() {
    return this.sources.size;
  }

  get queuedSeconds() {
    return Math.max(0, this.nextTime - this.ctx.currentTime);
  }

  get playing() {
    return this.sources.size > 0;
  }

  /**
   * Decode one chunk of little-endian Int16 bytes and schedule it after everything already queued.
   * @param {Uint8Array} bytes
   * @returns {number | null} the audio-clock time it starts at (null: nothing to play yet)
   */
  enqueue(bytes) {
    if (this.carry !== null) {
      const joined = new Uint8Array(bytes.length + 1);
      joined[0] = this.carry;
      joined.set(bytes, 1);
      bytes = joined;
      this.carry = null;
    }
    if (bytes.length % 2 === 1) {
      this.carry = bytes[bytes.length - 1];
      bytes = bytes.subarray(0, bytes.length - 1);
    }
    const n = bytes.length / 2;
    if (n === 0) return null;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const buffer = this.ctx.createBuffer(1, n, this.rate);
    const out = buffer.getChannelData(0);
    for (let i = 0; i < n; i++) out[i] = view.getInt16(i * 2, true) / 32768;

    const now = this.ctx.currentTime;
    const fresh = this.sources.size === 0;
    if (this.nextTime < now + 0.005) {
      if (!fresh) this.stats.underruns += 1;
      this.nextTime = now + LEAD;
    }
    const src = this.ctx.createBufferSource();
    src.buffer = buffer;
    src.connect(this.gain);
    src.onended = () => {
      this.sources.delete(src);
      this.stats.chunksEnded += 1;
      if (this.sources.size === 0) this.onIdle();
    };
    const at = this.nextTime;
    src.start(at);
    this.sources.add(src);
    this.nextTime = at + buffer.duration;
    this.stats.chunksScheduled += 1;
    this.stats.samplesScheduled += n;
    if (this.firstStartTime === null) this.firstStartTime = at;
    if (fresh) this.onStart(at);
    return at;
  }

  /** Stop everything now. Returns how many sources were cut. */
  flush() {
    const cut = this.sources.size;
    for (const src of this.sources) {
      src.onended = null; // "ended" keeps meaning "played to completion"
      try {
        src.stop();
      } catch {
        // never started: nothing to stop
      }
      src.disconnect();
    }
    this.sources.clear();
    this.nextTime = 0;
    this.carry = null;
    this.stats.flushes += 1;
    if (cut > 0) this.onIdle();
    return cut;
  }

  /** A new response begins: its first audible sample will define the client-side voice-to-voice time. */
  newResponse() {
    this.firstStartTime = null;
  }
}
