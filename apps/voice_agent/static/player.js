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
//
// pause() (the server's `playback` pause: it is finding out whether the user is barging in) stops the sources but
// keeps their buffers and how far each got; resume() schedules the rest again from there (start(when, offset)).
// The AudioContext is never suspended: the microphone runs through it too. played() is how many seconds of the
// current epoch's audio (counted from newEpoch(), the server's `playback` start) have been heard: what the
// page's `played` reports tell the server.

const LEAD = 0.08; // seconds of jitter buffer when (re)starting playback
const RESUME_LEAD = 0.02; // a resume plays what it holds, which is already here: just enough to schedule it

/**
 * One scheduled buffer: from `skip` seconds into `buffer`, at audio-clock time `at`; `offset` is the epoch's
 * seconds at that first sample.
 * @typedef {{src: AudioBufferSourceNode, buffer: AudioBuffer, skip: number, at: number, offset: number}} Entry
 */

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
    /** @type {Map<AudioBufferSourceNode, Entry>} */
    this.entries = new Map();
    this.epochSeconds = 0; // seconds of the current epoch's audio received
    this.heardBase = 0; // epoch seconds heard in full by sources that have ended
    this.paused = false;
    /** @type {Array<{buffer: AudioBuffer, skip: number, offset: number}>} */
    this.held = []; // what a pause stopped (and audio received since), in order
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
    return this.sources.size > 0 || (this.paused && this.held.length > 0);
  }

  /** A new epoch's audio follows (the server's `playback` start): its seconds count from 0. */
  newEpoch() {
    this.epochSeconds = 0;
    this.heardBase = 0;
  }

  /**
   * Seconds of the current epoch's audio heard by audio-clock time `now` (default: what reaches the speakers now).
   * @param {number} [now]
   */
  played(now) {
    const t = now === undefined ? this.ctx.currentTime - (this.ctx.outputLatency || 0) : now;
    let heard = this.heardBase;
    for (const e of this.entries.values()) {
      if (t > e.at) heard = Math.max(heard, e.offset + Math.min(t - e.at, e.buffer.duration - e.skip));
    }
    if (this.paused && this.held.length) heard = Math.max(heard, Math.min(...this.held.map((h) => h.offset)));
    return heard;
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
    const offset = this.epochSeconds;
    this.epochSeconds += buffer.duration;
    this.stats.chunksScheduled += 1;
    this.stats.samplesScheduled += n;
    if (this.paused) {
      this.held.push({ buffer, skip: 0, offset });
      return null;
    }
    const now = this.ctx.currentTime;
    const fresh = this.sources.size === 0;
    if (this.nextTime < now + 0.005) {
      if (!fresh) this.stats.underruns += 1;
      this.nextTime = now + LEAD;
    }
    const at = this.schedule(buffer, 0, offset);
    if (this.firstStartTime === null) this.firstStartTime = at;
    if (fresh) this.onStart(at);
    return at;
  }

  /**
   * Play `buffer` from `skip` seconds in, at the end of what is queued.
   * @param {AudioBuffer} buffer
   * @param {number} skip
   * @param {number} offset
   */
  schedule(buffer, skip, offset) {
    const src = this.ctx.createBufferSource();
    src.buffer = buffer;
    src.connect(this.gain);
    src.onended = () => {
      const entry = this.entries.get(src);
      if (entry) this.heardBase = Math.max(this.heardBase, entry.offset + buffer.duration - entry.skip);
      this.entries.delete(src);
      this.sources.delete(src);
      this.stats.chunksEnded += 1;
      if (this.sources.size === 0) this.onIdle();
    };
    const at = this.nextTime;
    src.start(at, skip);
    this.sources.add(src);
    this.entries.set(src, { src, buffer, skip, at, offset });
    this.nextTime = at + buffer.duration - skip;
    return at;
  }

  /** Hold the agent's audio where it is (nothing is dropped); resume() plays on from there. */
  pause() {
    if (this.paused) return;
    const now = this.ctx.currentTime;
    const entries = [...this.entries.values()].sort((a, b) => a.at - b.at);
    const held = [];
    for (const e of entries) {
      const elapsed = Math.max(0, now - e.at);
      const rest = e.buffer.duration - e.skip - elapsed;
      if (rest > 0.001) held.push({ buffer: e.buffer, skip: e.skip + elapsed, offset: e.offset + elapsed });
      else this.heardBase = Math.max(this.heardBase, e.offset + e.buffer.duration - e.skip);
      this.stop(e.src);
    }
    this.held = held.concat(this.held);
    this.paused = true;
    this.nextTime = 0;
  }

  /** Play on what pause() held, from where it stopped. */
  resume() {
    if (!this.paused) return;
    this.paused = false;
    const held = this.held;
    this.held = [];
    this.nextTime = this.ctx.currentTime + RESUME_LEAD;
    for (const h of held) this.schedule(h.buffer, h.skip, h.offset);
    if (this.sources.size === 0) this.onIdle();
  }

  /** @param {AudioBufferSourceNode} src */
  stop(src) {
    src.onended = null; // "ended" keeps meaning "played to completion"
    try {
      src.stop();
    } catch {
      // never started: nothing to stop
    }
    src.disconnect();
    this.sources.delete(src);
    this.entries.delete(src);
  }

  /** Stop everything now. Returns how many sources were cut. */
  flush() {
    const cut = this.sources.size + this.held.length;
    this.heardBase = this.played(); // what was heard stays heard
    for (const src of [...this.sources]) this.stop(src);
    this.held = [];
    this.paused = false;
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
