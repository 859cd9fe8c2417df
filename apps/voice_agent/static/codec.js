// @ts-check
// Audio bytes <-> the protocol's base64 strings. Pure functions (the page and Node's tests share them).

/**
 * Little-endian Int16 samples as base64 (the seed's `audio` message format).
 * @param {Int16Array} int16
 * @returns {string}
 */
export function toBase64(int16) {
  const u8 = new Uint8Array(int16.buffer, int16.byteOffset, int16.byteLength);
  let s = "";
  for (let i = 0; i < u8.length; i++) s += String.fromCharCode(u8[i]);
  return btoa(s);
}

/**
 * The bytes of a base64 `audio` message (an odd byte count is the player's business: it carries it over).
 * @param {string} b64
 * @returns {Uint8Array}
 */
export function fromBase64(b64) {
  const s = atob(b64);
  const u8 = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) u8[i] = s.charCodeAt(i);
  return u8;
}
