// @ts-check
// window.voxline: what the browser tests read and drive (docs/browser-client.md lists every hook). Read-only
// views onto the client's state, the player's and the socket's counters, and the Web Audio clock; the page
// itself never reads them.

/** @typedef {import("./client.js").Client} Client */

/**
 * @param {Client} client
 * @param {Window} [target]
 */
export function installHooks(client, target = window) {
  const audio = client.audio;
  const hooks = {
    get state() {
      const s = client.state;
      return { connection: s.connection, server: s.server, mic: Boolean(audio.mic), audio: audio.ctx ? audio.ctx.state : "none" };
    },
    get counters() {
      const p = audio.player;
      return {
        ...client.state.counts,
        ...client.uplink.stats,
        messagesSent: client.conn.stats.sent,
        connects: client.conn.stats.connects,
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
      return audio.player ? audio.player.level : 0;
    },
    get micRms() {
      return audio.micRms;
    },
    get sampleRate() {
      return audio.ctx ? audio.ctx.sampleRate : null;
    },
    get binaryAudio() {
      return client.uplink.binary; // microphone frames go out as binary messages on this connection
    },
    get rates() {
      return { ...client.state.rates };
    },
    audioTime: () => (audio.ctx ? audio.ctx.currentTime : null),
    get meterLog() {
      return audio.meterLog.slice();
    },
    get micLog() {
      return audio.micLog.slice();
    },
    get playback() {
      const p = audio.player;
      return { ...client.state.playback, played: p ? p.played() : 0, playerPaused: p ? p.paused : false };
    },
    get lastInterrupt() {
      return client.state.lastInterrupt;
    },
    get session() {
      return client.state.session;
    },
    get errors() {
      return client.state.errors.slice();
    },
    get stageErrors() {
      return { ...client.state.stageErrors };
    },
    get transcripts() {
      return client.state.transcripts.slice();
    },
    get replies() {
      return client.state.replies.filter((r) => r);
    },
    get messages() {
      return { ...client.state.messages };
    },
    get turns() {
      return client.state.turns.map((t) => ({ label: t.label, metrics: { ...t.metrics }, clientV2v: t.clientV2v, interrupted: t.interrupted }));
    },
    get speech() {
      const d = audio.detector;
      return {
        speaking: d.speaking,
        threshold: d.threshold,
        lastVoicedEnd: d.lastVoicedEnd,
        coupling: d.coupling,
        lastStart: audio.lastSpeechStart,
      };
    },
    interrupt: () => client.dispatch({ type: "interrupt", reason: "test" }),
    ready: true,
  };
  /** @type {any} */ (target).voxline = hooks;
  return hooks;
}
