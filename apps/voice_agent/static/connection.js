// @ts-check
// The /ws connection with automatic reconnect.
//
// A dropped socket is retried with exponential backoff (0.5 s doubling to 8 s, with jitter so a restarted
// server is not hit by every tab at the same instant). The delay resets once a connection has stayed up.
// State changes go to onState so the page can always show what is going on:
//   "connecting" -> "open" -> ("reconnecting" with a countdown -> "connecting" -> ...) or "closed" (stopped).

const BASE_DELAY = 500;
const MAX_DELAY = 8000;
const STABLE_MS = 3000; // a connection that lived this long resets the backoff

/** @typedef {"connecting" | "open" | "reconnecting" | "closed"} ConnectionState */

export class Connection {
  /**
   * @param {string} url
   * @param {object} handlers
   * @param {(message: unknown) => void} handlers.onMessage  every JSON text frame, parsed
   * @param {(state: ConnectionState, attempt: number, code?: number, delay?: number) => void} handlers.onState
   */
  constructor(url, { onMessage, onState }) {
    this.url = url;
    this.onMessage = onMessage;
    this.onState = onState;
    /** @type {WebSocket | null} */
    this.ws = null;
    this.attempt = 0;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.timer = undefined;
    this.stopped = false;
    this.openedAt = 0;
    this.stats = { connects: 0, disconnects: 0, sent: 0, received: 0, dropped: 0 };
    this.retryAt = 0;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  connect() {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.onState("connecting", this.attempt);
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this.scheduleRetry();
      return;
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => {
      this.openedAt = performance.now();
      this.stats.connects += 1;
      this.onState("open", this.attempt);
    };
    ws.onmessage = (ev) => {
      this.stats.received += 1;
      if (typeof ev.data !== "string") return; // the server speaks JSON text frames
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      this.onMessage(msg);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.stats.disconnects += 1;
      if (this.openedAt && performance.now() - this.openedAt > STABLE_MS) this.attempt = 0;
      this.openedAt = 0;
      if (this.stopped) {
        this.onState("closed", 0, ev.code);
        return;
      }
      this.scheduleRetry(ev.code);
    };
  }

  /** @param {number} [code] the close code of the socket that dropped */
  scheduleRetry(code) {
    const base = Math.min(MAX_DELAY, BASE_DELAY * 2 ** this.attempt);
    const delay = base * (0.75 + Math.random() * 0.5);
    this.attempt += 1;
    this.retryAt = performance.now() + delay;
    this.onState("reconnecting", this.attempt, code, delay);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  /** Retry now (the user pressed "reconnect"). */
  retryNow() {
    if (this.ws) return;
    this.connect();
  }

  get isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  /**
   * Send a message (objects as JSON); false when the socket is not open.
   * @param {string | ArrayBuffer | object} obj
   */
  send(obj) {
    const ws = this.ws;
    if (ws === null || ws.readyState !== WebSocket.OPEN) {
      this.stats.dropped += 1;
      return false;
    }
    ws.send(typeof obj === "string" || obj instanceof ArrayBuffer ? obj : JSON.stringify(obj));
    this.stats.sent += 1;
    return true;
  }

  /** Bytes waiting in the socket's send buffer: lets the mic path notice a congested link. */
  get buffered() {
    return this.ws ? this.ws.bufferedAmount : 0;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000);
  }
}
