// Microphone frames onto the socket (uplink.js) and the base64 codec (codec.js): the wire formats of
// docs/protocol.md and the back-pressure rule. Run: node --test tests/js/
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { fromBase64, toBase64 } from "../../apps/voice_agent/static/codec.js";
import { MAX_BUFFERED, Uplink } from "../../apps/voice_agent/static/uplink.js";

/** A socket that records what it was asked to send. */
class FakeSocket {
  constructor() {
    this.isOpen = true;
    this.buffered = 0;
    /** @type {Array<string | ArrayBuffer | object>} */
    this.sent = [];
  }

  /** @param {string | ArrayBuffer | object} data */
  send(data) {
    if (!this.isOpen) return false;
    this.sent.push(data);
    return true;
  }
}

describe("codec", () => {
  it("encodes Int16 samples little-endian, as the seed's audio messages carry them", () => {
    const pcm = new Int16Array([1, -2, 0x7fff, -0x8000]);
    assert.equal(toBase64(pcm), Buffer.from([1, 0, 0xfe, 0xff, 0xff, 0x7f, 0x00, 0x80]).toString("base64"));
    const back = fromBase64(toBase64(pcm));
    assert.deepEqual(Array.from(new Int16Array(back.buffer)), [1, -2, 0x7fff, -0x8000]);
  });

  it("encodes only the view's own samples", () => {
    const whole = new Int16Array([9, 1, 2, 9]);
    assert.equal(toBase64(whole.subarray(1, 3)), toBase64(new Int16Array([1, 2])));
  });

  it("keeps an odd trailing byte for the player to carry over", () => {
    assert.deepEqual(Array.from(fromBase64(Buffer.from([1, 2, 3]).toString("base64"))), [1, 2, 3]);
  });
});

describe("uplink", () => {
  it("sends base64 JSON audio messages by default", () => {
    const socket = new FakeSocket();
    const uplink = new Uplink(socket);
    const pcm = new Int16Array([5, 6, 7]);
    assert.equal(uplink.send(pcm), true);
    assert.deepEqual(socket.sent, [{ type: "audio", data: toBase64(pcm) }]);
    assert.deepEqual(uplink.stats, { framesSent: 1, framesDropped: 0, bytesSent: 6 });
  });

  it("sends raw bytes of just the frame in binary mode", () => {
    const socket = new FakeSocket();
    const frame = new Int16Array([0, 1, 2, 3, 0]).subarray(1, 4);
    new Uplink(socket, { binary: true }).send(frame);
    const [bytes] = socket.sent;
    assert.ok(bytes instanceof ArrayBuffer);
    assert.deepEqual(Array.from(new Int16Array(bytes)), [1, 2, 3]);
  });

  it("drops and counts frames while the socket's buffer is over the limit, then sends again", () => {
    const socket = new FakeSocket();
    const uplink = new Uplink(socket);
    socket.buffered = MAX_BUFFERED + 1;
    assert.equal(uplink.send(new Int16Array(320)), false);
    socket.buffered = MAX_BUFFERED;
    assert.equal(uplink.send(new Int16Array(320)), true);
    assert.deepEqual(uplink.stats, { framesSent: 1, framesDropped: 1, bytesSent: 640 });
  });

  it("sends nothing and counts nothing while the socket is closed", () => {
    const socket = new FakeSocket();
    socket.isOpen = false;
    const uplink = new Uplink(socket);
    assert.equal(uplink.send(new Int16Array(320)), false);
    assert.deepEqual(uplink.stats, { framesSent: 0, framesDropped: 0, bytesSent: 0 });
  });
});
