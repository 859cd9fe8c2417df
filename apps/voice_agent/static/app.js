// voxline browser client: wires the microphone, the /ws connection, playback and the page together.
//
// Query flags:  ?raw=1     microphone without echo cancellation / noise suppression / auto gain (tests)
//               ?binary=1  send microphone frames as raw Int16 binary WebSocket messages instead of base64 JSON
//               ?ws=URL    connect somewhere other than this page's own /ws
// Test hooks live on window.voxline (counters and Web Audio state; see docs/browser-client.md).

import { Connection } from "./connection.js";
import { Mic } from "./mic.js";
import { Player } from "./player.js";
import { SpeechDetector } from "./speech.js";
import { Conversation, Waterfall, setAgentState, setMeter, showConnection, showError, showSession } from "./ui.js";

const params = new URLSearchParams(location.search);
const RAW = params.get("raw") === "1";
const BINARY = params.get("binary") === "1";
const WS_URL = params.get("ws") || `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws`;
const MAX_BUFFERED = 256 * 1024; // bytes queued in the socket before mic frames are dropped
const DROP_AFTER_INTERRUPT_MS = 1500; // longest wait for the server to confirm an interrupt
const ONSET_S = 0.4; // start of each reply during which the speech detector measures the echo coupling

const S = {
  ctx: null,
  audioReady: null,
  player: null,
  mic: null,
  micRms: 0,
  botPeak: 0,
  playStartedAt: 0,
  dropAudio: false,
  dropTimer: null,
  typedAt: null, // audio-clock time of the last typed turn
  turn: null,
  serverStatus: "",
  lastErrorAt: 0,
  session: null,
  errors: [],
  transcripts: [],
  replies: [""],
  meterLog: [],
  c: {
    framesSent: 0,
    framesDropped: 0,
    bytesSent: 0,
    audioChunksReceived: 0,
    audioChunksDropped: 0,
    interruptsSent: 0,
    bargeIns: 0,
    interruptsReceived: 0,
  },
  messages: {},
};

const conversation = new Conversation();
const waterfall = new Waterfall();
const detector = new SpeechDetector({
  onStart: (time, botPlaying) => {
    setAgentState("Listening…");
    if (botPlaying) {
      S.c.bargeIns += 1;
      interrupt("barge-in");
    }
  },
});

// ---------------------------------------------------------------- audio

/** Create (once) and resume the AudioContext. Call it synchronously from a user gesture. */
function ensureAudio() {
  if (!S.ctx) {
    S.ctx = new AudioContext({ latencyHint: "interactive" });
    const worklets = S.ctx.audioWorklet
      ? S.ctx.audioWorklet.addModule(new URL("./worklets.js", import.meta.url))
      : Promise.reject(new Error("this browser offers no AudioWorklet here (is the page secure?)"));
    S.audioReady = worklets.then(() => {
      S.player = new Player(S.ctx, {
        onLevel: onPlaybackLevel,
        onStart: (at) => (S.playStartedAt = at),
        onIdle: () => setAgentState("Your turn."),
      });
    });
    S.audioReady.catch((err) => showError(`Audio unavailable: ${err.message || err}`, false));
  }
  if (S.ctx.state !== "running") S.ctx.resume();
  return S.audioReady;
}

function onPlaybackLevel(rms, time) {
  S.botPeak = Math.max(rms, S.botPeak * 0.8);
  S.meterLog.push([time, rms]);
  if (S.meterLog.length > 500) S.meterLog.splice(0, 100);
}

function onMicFrame(pcm, rms, time) {
  S.micRms = rms;
  const player = S.player;
  const playing = Boolean(player && player.playing);
  const onset = playing && time - S.playStartedAt < ONSET_S;
  detector.push(rms, time, { playing, level: S.botPeak, onset });
  if (!S.conn.isOpen) return;
  if (S.conn.buffered > MAX_BUFFERED) {
    S.c.framesDropped += 1;
    return;
  }
  const sent = BINARY ? S.conn.send(pcm.buffer) : S.conn.send({ type: "audio", data: toBase64(pcm) });
  if (sent) {
    S.c.framesSent += 1;
    S.c.bytesSent += pcm.byteLength;
  }
}

async function startMic() {
  const talk = document.getElementById("talk");
  // Not `disabled`: that would drop keyboard focus from the button while the permission prompt is up.
  if (S.micStarting) return;
  S.micStarting = true;
  talk.setAttribute("aria-busy", "true");
  try {
    await ensureAudio();
    const mic = new Mic(S.ctx, { raw: RAW, onFrame: onMicFrame });
    await mic.start();
    S.mic = mic;
    talk.setAttribute("aria-pressed", "true");
    talk.textContent = "Stop talking";
    setAgentState("Listening… speak now.");
  } catch (err) {
    showError(`Microphone unavailable: ${err.message || err}`, false);
  } finally {
    S.micStarting = false;
    talk.removeAttribute("aria-busy");
  }
}

function stopMic() {
  if (S.mic) S.mic.stop();
  S.mic = null;
  S.micRms = 0;
  const talk = document.getElementById("talk");
  talk.setAttribute("aria-pressed", "false");
  talk.textContent = "Start talking";
  setAgentState("Microphone off.");
}

/** Barge-in or the Interrupt button: silence the agent now, tell the server, ignore its in-flight output. */
function interrupt(reason) {
  const cut = S.player ? S.player.flush() : 0;
  const replying = cut > 0 || S.serverStatus === "generating";
  if (S.conn.send({ type: "interrupt" })) S.c.interruptsSent += 1;
  S.dropAudio = true;
  clearTimeout(S.dropTimer);
  S.dropTimer = setTimeout(() => (S.dropAudio = false), DROP_AFTER_INTERRUPT_MS);
  S.lastInterrupt = { reason, time: S.ctx ? S.ctx.currentTime : null };
  conversation.endBot(replying);
  if (S.turn && replying) S.turn.interrupted = true;
  waterfall.render();
}

/** When the user's latest turn ended on the audio clock: their last voiced frame, or a typed send. */
function userTurnEnd() {
  const voiced = detector.voicedSeen ? detector.lastVoicedEnd : null;
  if (voiced === null) return S.typedAt;
  return S.typedAt === null ? voiced : Math.max(voiced, S.typedAt);
}

function onAudio(b64) {
  S.c.audioChunksReceived += 1;
  if (S.dropAudio || !S.player) {
    S.c.audioChunksDropped += 1;
    if (!S.player) setAgentState("The agent is speaking — press “Start talking” to hear it.");
    return;
  }
  const player = S.player;
  player.enqueue(fromBase64(b64));
  setAgentState("Speaking… (talk to interrupt)");
  const turn = S.turn;
  if (turn && turn.clientV2v === null && player.firstStartTime !== null) {
    const ref = userTurnEnd();
    const out = S.ctx.outputLatency || S.ctx.baseLatency || 0;
    if (ref !== null && player.firstStartTime > ref) {
      turn.clientV2v = (player.firstStartTime + out - ref) * 1000;
      waterfall.render();
    }
  }
}

// ---------------------------------------------------------------- protocol

function onMessage(msg) {
  S.messages[msg.type] = (S.messages[msg.type] || 0) + 1;
  if (msg.type === "transcript" || msg.type === "text_chunk" || msg.type === "audio") S.activeSinceOpen = true;
  switch (msg.type) {
    case "status":
      return onStatus(msg.data);
    case "transcript":
      S.transcripts.push(msg.data);
      if (S.transcripts.length > 200) S.transcripts.shift();
      return conversation.transcript(String(msg.data.text || ""), Boolean(msg.data.is_final));
    case "text_chunk":
      if (S.dropAudio) return;
      S.replies[S.replies.length - 1] += msg.data;
      return conversation.chunk(String(msg.data));
    case "audio":
      return onAudio(msg.data);
    case "error":
      return onError(String(msg.data));
    case "session":
      S.session = msg.data;
      showSession(msg.data);
      return onReadiness(msg.data);
    case "metrics":
      return onMetrics(msg.data);
    case "speaking":
      if (msg.data.who === "user" && msg.data.state === "started") setAgentState("Listening…");
      return;
    default:
  }
}

function onStatus(status) {
  S.wasGenerating = S.serverStatus === "generating";
  S.serverStatus = status;
  if (status === "generating") {
    conversation.startBot();
    S.replies.push("");
    if (S.player) S.player.newResponse();
    S.turn = waterfall.add({ label: waterfall.turns.length + 1, metrics: {}, clientV2v: null, serverTurn: null });
    S.turn.typed = S.typedAt !== null && S.typedAt === userTurnEnd();
    setAgentState("Thinking…");
  } else if (status === "complete") {
    conversation.endBot(false);
  } else if (status === "interrupted") {
    S.c.interruptsReceived += 1;
    const cut = S.player ? S.player.flush() : 0;
    const replying = cut > 0 || S.wasGenerating;
    conversation.endBot(replying);
    if (S.turn && replying) S.turn.interrupted = true;
    waterfall.render();
    clearTimeout(S.dropTimer);
    S.dropAudio = false;
  }
}

/**
 * The session message says whether this session can run (`ready`, `problems`). A session that cannot run is
 * shown as "cannot run" and kept; one that can clears a "cannot run" left from an earlier connection.
 */
function onReadiness(session) {
  if (typeof session.ready !== "boolean") return; // an older server: onError falls back to a timing guess
  clearTimeout(S.errorTimer);
  S.fatal = !session.ready;
  const problems = Array.isArray(session.problems) ? session.problems.join("; ") : "";
  showError(session.ready ? "" : problems || "the server did not say why", !session.ready);
}

/**
 * Errors are shown for a while; the session goes on. A session the server marked not ready keeps its
 * "cannot run" (the error names the same problems). Servers without `session.ready`: an error straight after
 * connecting, before anything happened, is taken to mean the session could not start.
 */
function onError(text) {
  S.errors.push(text);
  S.lastErrorAt = performance.now();
  const ready = S.session ? S.session.ready : undefined;
  const guess = ready === undefined && S.openedAt && S.lastErrorAt - S.openedAt < 3000 && !S.activeSinceOpen;
  const fatal = ready === false || Boolean(guess);
  S.fatal = fatal;
  showError(text, fatal);
  clearTimeout(S.errorTimer);
  if (!fatal) S.errorTimer = setTimeout(() => showError("", false), 10000);
}

function onMetrics(data) {
  let turn = waterfall.turns.find((t) => t.serverTurn !== null && t.serverTurn === data.turn);
  turn = turn || [...waterfall.turns].reverse().find((t) => t.serverTurn === null);
  turn = turn || waterfall.add({ label: waterfall.turns.length + 1, metrics: {}, clientV2v: null, serverTurn: null });
  if (data.turn !== undefined && data.turn !== null) turn.serverTurn = data.turn;
  for (const [k, v] of Object.entries(data)) if (v !== null && v !== undefined) turn.metrics[k] = v;
  waterfall.render();
}

function onConnState(state, attempt, code, delay) {
  S.connState = state;
  if (state === "reconnecting") {
    // An error followed at once by the server closing the socket means the agent cannot start at all.
    const lastError = S.errors[S.errors.length - 1];
    if (lastError && performance.now() - S.lastErrorAt < 2000) {
      S.fatal = true;
      showError(String(lastError), true);
    }
    showConnection(state, `in ${(delay / 1000).toFixed(1)} s (attempt ${attempt})`);
    if (S.player) S.player.flush();
    conversation.endBot(false);
  } else {
    showConnection(state);
  }
}

function onOpen() {
  S.openedAt = performance.now();
  S.activeSinceOpen = false;
  S.session = null; // this connection's session message says afresh whether it can run
  if (!S.fatal) showError("", false);
  // Older servers (no session.ready): a "cannot run" from an earlier connection stays up until this one has
  // started cleanly.
  setTimeout(() => {
    const told = S.session && typeof S.session.ready === "boolean";
    if (S.fatal && !told && S.lastErrorAt < S.openedAt && S.conn.isOpen) {
      S.fatal = false;
      showError("", false);
    }
  }, 3000);
  if (BINARY) S.conn.send({ type: "config", data: { binary_audio: true } });
}

// ---------------------------------------------------------------- helpers

function toBase64(int16) {
  const u8 = new Uint8Array(int16.buffer, int16.byteOffset, int16.byteLength);
  let s = "";
  for (let i = 0; i < u8.length; i++) s += String.fromCharCode(u8[i]);
  return btoa(s);
}

function fromBase64(b64) {
  const s = atob(b64);
  const u8 = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) u8[i] = s.charCodeAt(i);
  return u8;
}

function drawMeters() {
  setMeter("mic-meter", S.micRms);
  setMeter("bot-meter", S.player ? S.player.level : 0);
  requestAnimationFrame(drawMeters);
}

// ---------------------------------------------------------------- page

S.conn = new Connection(WS_URL, { onMessage, onState: onConnState, onOpen });

document.getElementById("talk").addEventListener("click", () => (S.mic ? stopMic() : startMic()));
document.getElementById("interrupt").addEventListener("click", () => {
  ensureAudio();
  interrupt("button");
});
document.getElementById("retry").addEventListener("click", () => S.conn.retryNow());
document.getElementById("typed").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const input = document.getElementById("typed-input");
  const text = input.value.trim();
  if (!text) return;
  ensureAudio();
  if (S.player && S.player.playing) interrupt("typed");
  if (!S.conn.send({ type: "text", data: text })) {
    showError("Not connected — your message was not sent.", false);
    return;
  }
  S.typedAt = S.ctx.currentTime;
  conversation.typed(text);
  input.value = "";
});

window.voxline = {
  get state() {
    return { connection: S.connState, server: S.serverStatus, mic: Boolean(S.mic), audio: S.ctx ? S.ctx.state : "none" };
  },
  get counters() {
    const p = S.player;
    return {
      ...S.c,
      messagesSent: S.conn.stats.sent,
      connects: S.conn.stats.connects,
      chunksScheduled: p ? p.stats.chunksScheduled : 0,
      chunksEnded: p ? p.stats.chunksEnded : 0,
      samplesScheduled: p ? p.stats.samplesScheduled : 0,
      underruns: p ? p.stats.underruns : 0,
      flushes: p ? p.stats.flushes : 0,
      activeSources: p ? p.active : 0,
      queuedSeconds: p ? p.queuedSeconds : 0,
    };
  },
  get playbackRms() {
    return S.player ? S.player.level : 0;
  },
  get micRms() {
    return S.micRms;
  },
  get sampleRate() {
    return S.ctx ? S.ctx.sampleRate : null;
  },
  audioTime: () => (S.ctx ? S.ctx.currentTime : null),
  get meterLog() {
    return S.meterLog.slice();
  },
  get lastInterrupt() {
    return S.lastInterrupt || null;
  },
  get session() {
    return S.session;
  },
  get errors() {
    return S.errors.slice();
  },
  get transcripts() {
    return S.transcripts.slice();
  },
  get replies() {
    return S.replies.filter((r) => r);
  },
  get messages() {
    return { ...S.messages };
  },
  get turns() {
    return waterfall.turns.map((t) => ({ label: t.label, metrics: { ...t.metrics }, clientV2v: t.clientV2v, interrupted: Boolean(t.interrupted) }));
  },
  get speech() {
    const d = detector;
    return { speaking: d.speaking, threshold: d.threshold, lastVoicedEnd: d.lastVoicedEnd, coupling: d.coupling };
  },
  interrupt: () => interrupt("test"),
  ready: true,
};

showConnection("connecting");
if (!window.isSecureContext) {
  // Browsers expose the microphone and AudioWorklet only to https:// and localhost pages.
  const box = document.getElementById("insecure");
  box.textContent =
    `Voice needs a secure page: open http://localhost:${location.port || 80}/ on the machine running the agent, ` +
    "or serve it over https://. Typed messages still get text replies.";
  box.hidden = false;
}
requestAnimationFrame(drawMeters);
S.conn.start();
