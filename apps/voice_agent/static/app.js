// @ts-check
// voxline browser client: the entry point. Reads the query flags, starts the client, installs the test hooks.
//
// Query flags:  ?raw=1     microphone without echo cancellation / noise suppression / auto gain (tests)
//               ?binary=0  send microphone frames as the seed's base64 JSON `audio` messages (the default: raw
//                          Int16 binary WebSocket messages, to a server whose session message offers `binary_audio`)
//               ?ws=URL    connect somewhere other than this page's own /ws
//               ?token=T   a session token for an agent that requires one (AUTH_TOKEN / SESSION_SECRET)
//               ?bargein=client|server  who interrupts when the user talks over the agent (default: the server
//                          when its session message says it does, else the page)
// Module map and test hooks (window.voxline): docs/browser-client.md.

import { Client } from "./client.js";
import { installHooks } from "./hooks.js";

const params = new URLSearchParams(location.search);
const wsBase = params.get("ws") || `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws`;
const token = params.get("token"); // ?token=: a session token the site that sent us here minted (docs/security.md)
const client = new Client({
  url: token ? `${wsBase}${wsBase.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}` : wsBase,
  raw: params.get("raw") === "1",
  binary: params.get("binary") !== "0",
  bargeIn: params.get("bargein"),
});
installHooks(client);

if (!window.isSecureContext) {
  // Browsers expose the microphone and AudioWorklet only to https:// and localhost pages.
  const box = /** @type {HTMLElement} */ (document.getElementById("insecure"));
  box.textContent =
    `Voice needs a secure page: open http://localhost:${location.port || 80}/ on the machine running the agent, ` +
    "or serve it over https://. Typed messages still get text replies.";
  box.hidden = false;
}
client.start();
