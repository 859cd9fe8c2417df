// @ts-check
// Microphone frames onto the socket: base64 JSON (the seed format) or raw binary (after `config`
// binary_audio), and nothing piles up behind a stalled link: past MAX_BUFFERED bytes frames are dropped and
// counted instead.

import { toBase64 } from "./codec.js";

export const MAX_BUFFERED = 256 * 1024; // bytes queued in the socket before mic frames are dropped

/**
 * The part of Connection the uplink needs (a fake in tests).
 * @typedef {object} Socket
 * @property {boolean} isOpen
 * @property {number} buffered
 * @property {(data: string | ArrayBuffer | object) => boolean} send
 */

export class Uplink {
  /**
   * @param {Socket} socket
   * @param {{binary?: boolean}} [options]
   */
  constructor(socket, { binary = false } = {}) {
    this.socket = socket;
    this.binary = binary;
    this.stats = { framesSent: 0, framesDropped: 0, bytesSent: 0 };
  }

  /**
   * Send one frame of 16-bit PCM. Returns whether it went out.
   * @param {Int16Array} pcm
   */
  send(pcm) {
    if (!this.socket.isOpen) return false;
    if (this.socket.buffered > MAX_BUFFERED) {
      this.stats.framesDropped += 1;
      return false;
    }
    const whole = pcm.byteOffset === 0 && pcm.byteLength === pcm.buffer.byteLength;
    const bytes = /** @type {ArrayBuffer} */ (whole ? pcm.buffer : pcm.slice().buffer);
    const sent = this.binary ? this.socket.send(bytes) : this.socket.send({ type: "audio", data: toBase64(pcm) });
    if (sent) {
      this.stats.framesSent += 1;
      this.stats.bytesSent += pcm.byteLength;
    }
    return sent;
  }
}
