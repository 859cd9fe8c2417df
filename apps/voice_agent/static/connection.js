// The /ws connection with automatic reconnect.
//
// A dropped socket is retried with exponential backoff (0.5 s doubling to 8 s, with jitter so a restarted
// server is not hit by every tab at the same instant). The delay resets once a connection has stayed up.
// State changes go to onState so the page can always show what is going on:
//   "connecting" -> "open" -> ("reconnecting" with a countdown -> "connecting" -> ...) or "closed" (stopped).

const BASE_DELAY = 500;
const MAX_DELAY = 8000;
const STABLE_MS = 3000; // a connection that lived this long resets the backoff

export class Connection {
  constructor(url, { onMessage, onState, onOpen }) {
    this.url = url;
    this.onMessage = onMessage;
    this.onState = onState;
    this.onOpen = onOpen || (() => {});
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
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
    this.timer = null;
    this.onState("connecting", this.attempt);
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      this.scheduleRetry();
      return;
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => {
      this.openedAt = performance.now();
      this.stats.connects += 1;
      this.onState("open", this.attempt);
      this.onOpen();
    };
    ws.onmessage = (ev) => {
      this.stats.received += 1;
      if (typeof ev.data !== "string") return; // the server speaks JSON text frames
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch (_) {
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

  send(obj) {
    if (!this.isOpen) {
      this.stats.dropped += 1;
      return false;
    }
    this.ws.send(typeof obj === "string" || obj instanceof ArrayBuffer ? obj : JSON.stringify(obj));
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
