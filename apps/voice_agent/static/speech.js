// @ts-check
// Client-side speech detection from the microphone's 20 ms frame energy.
//
// Two jobs: (1) barge-in — when the user talks over the agent, the page interrupts at once instead of waiting
// for the server's speech-to-text round trip; (2) timing — the end of the user's speech is the start of the
// client-measured voice-to-voice latency.
//
// It is deliberately simple: an adaptive noise floor, a start threshold that must hold for a while, and a
// hangover before "stopped". While the agent is audible the bar is raised: a longer hold, and a level that must
// clearly exceed the agent's own voice as it leaks back into the microphone (speakers without headphones, echo
// cancellation off or imperfect). That leak is measured, not guessed: during the first 400 ms of each reply
// (when people rarely interrupt) the ratio of mic level to playback level is the echo coupling; afterwards
// speech must beat coupling x playback level by ECHO_MARGIN. With headphones the coupling is ~0 and barge-in
// is as sensitive as normal speech detection.

const MIN_THRESHOLD = 0.02; // linear RMS (about -34 dBFS)
const NOISE_FACTOR = 3; // speech must be this far above the noise floor
const HOLD_MS = 100; // voiced time needed to call it speech
const HOLD_WHILE_BOT_MS = 200; // ... while the agent is speaking (barge-in)
const HANGOVER_MS = 500; // unvoiced time before the speech is over
const ECHO_MARGIN = 2; // while the agent speaks, mic level must exceed twice the measured echo (6 dB)
const MAX_COUPLING = 1; // more than that is the user talking over the reply's start, not echo
const FRAME_MS = 20;

/**
 * @typedef {object} DetectorEvents
 * @property {(time: number, botPlaying: boolean) => void} [onStart]  speech started (audio-clock time)
 * @property {(lastVoicedEnd: number) => void} [onEnd]                speech ended at its last voiced frame
 */

export class SpeechDetector {
  /** @param {DetectorEvents} [events] */
  constructor({ onStart, onEnd } = {}) {
    this.onStart = onStart || (() => {});
    this.onEnd = onEnd || (() => {});
    this.floor = 0.005;
    this.voicedMs = 0;
    this.silentMs = 0;
    this.speaking = false;
    this.lastVoicedEnd = 0; // audio-clock time at which the last voiced frame ended
    this.voicedSeen = false;
    this.threshold = MIN_THRESHOLD;
    this.coupling = 0; // mic RMS / playback RMS seen at reply onsets
    this.onsetSeen = false;
  }

  /**
   * Feed one frame. `time` is the audio-clock time at the end of the frame; `bot` is {playing, level, onset}:
   * level is the recent peak RMS of the playback meter, onset is true in the first 400 ms of a reply.
   * @param {number} rms
   * @param {number} time
   * @param {{playing: boolean, level: number, onset: boolean}} [bot]
   */
  push(rms, time, bot = { playing: false, level: 0, onset: false }) {
    if (bot.playing && bot.onset && bot.level > 0.01 && !this.speaking) {
      if (!this.onsetSeen) this.coupling *= 0.5; // a new reply: let an old estimate fade
      this.onsetSeen = true;
      this.coupling = Math.min(MAX_COUPLING, Math.max(this.coupling, rms / bot.level));
    } else if (!bot.onset) {
      this.onsetSeen = false;
    }
    if (!this.speaking) {
      // The floor follows quiet frames quickly and loud ones very slowly, so speech does not raise it much.
      const rate = rms < this.floor ? 0.2 : 0.002;
      this.floor += (rms - this.floor) * rate;
    }
    let threshold = Math.max(MIN_THRESHOLD, this.floor * NOISE_FACTOR);
    if (bot.playing) threshold = Math.max(threshold, ECHO_MARGIN * this.coupling * bot.level);
    this.threshold = threshold;
    const voiced = rms > threshold;
    if (voiced) {
      this.voicedMs += FRAME_MS;
      this.silentMs = 0;
      this.lastVoicedEnd = time;
      this.voicedSeen = true;
      const hold = bot.playing ? HOLD_WHILE_BOT_MS : HOLD_MS;
      if (!this.speaking && this.voicedMs >= hold) {
        this.speaking = true;
        this.onStart(time, bot.playing);
      }
    } else {
      this.silentMs += FRAME_MS;
      if (this.silentMs >= 60) this.voicedMs = 0; // short gaps inside a syllable do not reset the hold
      if (this.speaking && this.silentMs >= HANGOVER_MS) {
        this.speaking = false;
        this.onEnd(this.lastVoicedEnd);
      }
    }
    return voiced;
  }
}
