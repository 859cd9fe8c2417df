// @ts-check
// Microphone capture: getUserMedia -> AudioWorklet (voxline-capture) -> 20 ms Int16 frames at the server's
// `audio_in_rate` (16 kHz unless the session message says otherwise).
//
// Echo cancellation, noise suppression and auto gain are ON by default: a real user on laptop speakers needs
// echo cancellation, or the agent hears (and interrupts) itself. `?raw=1` turns all three off, which keeps the
// captured samples identical to the source — the browser tests use it to compare what the server received
// with the WAV file that played as the microphone.

export class Mic {
  /**
   * @param {AudioContext} ctx
   * @param {object} options
   * @param {boolean} [options.raw]  no echo cancellation / noise suppression / auto gain
   * @param {number} [options.rate]  output sample rate of the frames
   * @param {(pcm: Int16Array, rms: number, time: number) => void} options.onFrame
   */
  constructor(ctx, { raw = false, rate = 16000, onFrame }) {
    this.ctx = ctx;
    this.raw = raw;
    this.rate = rate;
    this.onFrame = onFrame;
    /** @type {MediaStream | null} */
    this.stream = null;
    /** @type {MediaStreamAudioSourceNode | null} */
    this.source = null;
    /** @type {AudioWorkletNode | null} */
    this.node = null;
  }

  async start() {
    const processing = !this.raw;
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: {
        channelCount: 1,
        echoCancellation: processing,
        noiseSuppression: processing,
        autoGainControl: processing,
      },
    });
    this.source = this.ctx.createMediaStreamSource(this.stream);
    // Zero outputs: the node is a sink, rendered because it has an input, and nothing reaches the speakers.
    this.node = new AudioWorkletNode(this.ctx, "voxline-capture", {
      numberOfInputs: 1,
      numberOfOutputs: 0,
      processorOptions: { rate: this.rate },
    });
    this.node.port.onmessage = (e) => {
      const { pcm, rms, time } = e.data;
      this.onFrame(new Int16Array(pcm), rms, time);
    };
    this.source.connect(this.node);
  }

  /**
   * Frames at another rate from now on (a new session asked for it).
   * @param {number} rate
   */
  setRate(rate) {
    this.rate = rate;
    if (this.node) this.node.port.postMessage({ rate });
  }

  get label() {
    const track = this.stream && this.stream.getAudioTracks()[0];
    return track ? track.label : "";
  }

  stop() {
    if (this.node) {
      this.node.port.postMessage("stop");
      this.node.port.onmessage = null;
      this.node.disconnect();
    }
    if (this.source) this.source.disconnect();
    if (this.stream) for (const t of this.stream.getTracks()) t.stop();
    this.node = null;
    this.source = null;
    this.stream = null;
  }
}
