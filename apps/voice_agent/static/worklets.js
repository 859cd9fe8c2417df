// @ts-check
// AudioWorklet processors for the voxline page. They run on the audio rendering thread, so they only do
// cheap per-sample arithmetic and post small messages; everything else happens on the main thread.
//
// voxline-capture: microphone -> mono Int16 frames of 20 ms at the server's `audio_in_rate` (16 kHz, 320
//   samples, unless the session says otherwise), plus the frame's RMS. The context runs at whatever rate the
//   device wants (44100 Hz in headless Chromium, 48000 Hz on most laptops), so the ratio is generally not an
//   integer. We low-pass first (three cascaded biquads, a 6th-order Butterworth at 0.4375 x the output rate,
//   7 kHz for 16 kHz: a 12 kHz tone, which would fold to 4 kHz, comes out ~40 dB down), then read the
//   filtered signal at fractional positions with linear interpolation. The rate comes in processorOptions
//   and can change later with a {rate} message.
// voxline-meter: passes audio through untouched and posts the RMS of every ~20 ms block with the audio
//   clock time, so the page (and the tests) can see what is really being played.

const DEFAULT_RATE = 16000;
const FRAME_S = 0.02; // 20 ms frames
const CUTOFF = 0.4375; // low-pass corner as a fraction of the output rate (7 kHz for 16 kHz)

/** @typedef {{b0: number, b1: number, b2: number, a1: number, a2: number, x1: number, x2: number, y1: number, y2: number}} Biquad */

/**
 * RBJ cookbook low-pass biquad coefficients, normalised by a0.
 * @param {number} fs
 * @param {number} fc
 * @param {number} q
 * @returns {Biquad}
 */
function lowpass(fs, fc, q) {
  const w0 = (2 * Math.PI * fc) / fs;
  const alpha = Math.sin(w0) / (2 * q);
  const cos = Math.cos(w0);
  const a0 = 1 + alpha;
  return {
    b0: (1 - cos) / 2 / a0,
    b1: (1 - cos) / a0,
    b2: (1 - cos) / 2 / a0,
    a1: (-2 * cos) / a0,
    a2: (1 - alpha) / a0,
    x1: 0,
    x2: 0,
    y1: 0,
    y2: 0,
  };
}

/**
 * @param {Biquad} f
 * @param {number} x
 */
function biquad(f, x) {
  const y = f.b0 * x + f.b1 * f.x1 + f.b2 * f.x2 - f.a1 * f.y1 - f.a2 * f.y2;
  f.x2 = f.x1;
  f.x1 = x;
  f.y2 = f.y1;
  f.y1 = y;
  return y;
}

class CaptureProcessor extends AudioWorkletProcessor {
  /** @param {{processorOptions?: {rate?: number}}} [options] */
  constructor(options) {
    super();
    this.running = true;
    this.step = 1;
    this.passthrough = true;
    /** @type {Biquad[]} */
    this.filters = [];
    this.pos = 0;
    this.prev = 0;
    this.frameSize = 0;
    this.frame = new Int16Array(0);
    this.fill = 0;
    this.energy = 0;
    this.configure((options && options.processorOptions && options.processorOptions.rate) || DEFAULT_RATE);
    this.port.onmessage = (e) => {
      if (e.data === "stop") this.running = false;
      else if (e.data && typeof e.data.rate === "number") this.configure(e.data.rate);
    };
  }

  /**
   * Output `rate` Hz from here on (a partial frame at the old rate is discarded).
   * @param {number} rate
   */
  configure(rate) {
    this.step = sampleRate / rate; // input samples per output sample, e.g. 2.75625
    this.passthrough = Math.abs(this.step - 1) < 1e-9;
    // Only a downsampler needs the anti-alias filter. Q values of the three sections of a 6th-order Butterworth.
    const q = this.step > 1 ? [0.5176, 0.7071, 1.9319] : [];
    this.filters = q.map((v) => lowpass(sampleRate, CUTOFF * rate, v));
    this.pos = 0; // position of the next output sample, in input samples relative to `prev`
    this.prev = 0; // last filtered input sample of the previous block
    this.frameSize = Math.round(rate * FRAME_S);
    this.frame = new Int16Array(this.frameSize);
    this.fill = 0;
    this.energy = 0;
  }

  /** @param {number} v */
  emit(v) {
    const s = v < -1 ? -1 : v > 1 ? 1 : v;
    this.energy += s * s;
    this.frame[this.fill++] = s < 0 ? s * 0x8000 : s * 0x7fff;
    if (this.fill === this.frameSize) {
      const rms = Math.sqrt(this.energy / this.frameSize);
      // currentTime is the start of this render quantum; the frame ended within it.
      this.port.postMessage({ pcm: this.frame.buffer, rms, time: currentTime }, [this.frame.buffer]);
      this.frame = new Int16Array(this.frameSize);
      this.fill = 0;
      this.energy = 0;
    }
  }

  /** @param {Float32Array[][]} inputs */
  process(inputs) {
    const input = inputs[0];
    if (!input || input.length === 0) return this.running;
    const ch = input[0];
    const n = ch.length;
    if (this.passthrough) {
      for (let i = 0; i < n; i++) this.emit(ch[i]);
      return this.running;
    }
    const y = new Float32Array(n);
    const filters = this.filters;
    if (filters.length === 3) {
      const [f1, f2, f3] = filters;
      for (let i = 0; i < n; i++) y[i] = biquad(f3, biquad(f2, biquad(f1, ch[i])));
    } else {
      y.set(ch);
    }
    // Sample index -1 is `prev` (end of last block); pos is measured from index -1.
    let pos = this.pos;
    while (pos < n) {
      const i = Math.floor(pos);
      const frac = pos - i;
      const a = i === 0 ? this.prev : y[i - 1];
      const b = y[i];
      this.emit(a + (b - a) * frac);
      pos += this.step;
    }
    this.pos = pos - n;
    this.prev = y[n - 1];
    return this.running;
  }
}

class MeterProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.energy = 0;
    this.count = 0;
    this.block = Math.round(sampleRate * 0.02);
  }

  /**
   * @param {Float32Array[][]} inputs
   * @param {Float32Array[][]} outputs
   */
  process(inputs, outputs) {
    const input = inputs[0];
    const output = outputs[0];
    if (input && input.length > 0) {
      const ch = input[0];
      for (let i = 0; i < ch.length; i++) this.energy += ch[i] * ch[i];
      for (let c = 0; c < output.length; c++) output[c].set(input[Math.min(c, input.length - 1)]);
    }
    // No input connected (nothing playing) counts as silence.
    this.count += 128;
    if (this.count >= this.block) {
      this.port.postMessage({ rms: Math.sqrt(this.energy / this.count), time: currentTime });
      this.energy = 0;
      this.count = 0;
    }
    return true;
  }
}

registerProcessor("voxline-capture", CaptureProcessor);
registerProcessor("voxline-meter", MeterProcessor);
