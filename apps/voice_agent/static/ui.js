// @ts-check
// DOM rendering for the voxline page: conversation bubbles, latency waterfall, notices and meters.
// Pure presentation: it never touches audio, the socket or the protocol state; client.js calls it.

/** @typedef {import("./protocol-state.js").Turn} Turn */

/**
 * An element the page's HTML always has.
 * @param {string} id
 * @returns {HTMLElement}
 */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/**
 * @param {Element} el
 * @param {string} selector
 * @returns {HTMLElement}
 */
const part = (el, selector) => /** @type {HTMLElement} */ (el.querySelector(selector));

/** The conversation log: user bubbles (finals + a dimmed interim tail) and streaming agent bubbles. */
export class Conversation {
  constructor() {
    this.log = $("log");
    /** @type {{el: HTMLElement, finals: string[], interim: HTMLElement} | null} */
    this.user = null; // while the user's turn is open
    /** @type {HTMLElement | null} */
    this.bot = null; // the agent bubble being streamed into
    /** @type {HTMLElement | null} */
    this.lastBot = null;
  }

  /** @param {"user" | "bot"} who */
  bubble(who) {
    const li = document.createElement("li");
    li.className = `msg ${who}`;
    const label = document.createElement("span");
    label.className = "who";
    label.textContent = who === "user" ? "You" : "Agent";
    const text = document.createElement("span");
    text.className = "text";
    li.append(label, text);
    this.log.append(li);
    this.log.scrollTop = this.log.scrollHeight;
    return li;
  }

  /**
   * @param {string} text
   * @param {boolean} isFinal
   */
  transcript(text, isFinal) {
    if (!this.user) {
      const el = this.bubble("user");
      const interim = document.createElement("span");
      interim.className = "interim";
      interim.setAttribute("aria-hidden", "true"); // screen readers get the final words, not every guess
      el.append(interim);
      this.user = { el, finals: [], interim };
    }
    if (isFinal) {
      if (text.trim()) this.user.finals.push(text.trim());
      this.user.interim.textContent = "";
    } else {
      this.user.interim.textContent = (this.user.finals.length ? " " : "") + text;
    }
    part(this.user.el, ".text").textContent = this.user.finals.join(" ");
    this.log.scrollTop = this.log.scrollHeight;
  }

  /** @param {string} text */
  typed(text) {
    this.closeUser();
    const el = this.bubble("user");
    part(el, ".text").textContent = text;
  }

  closeUser() {
    if (this.user && !this.user.finals.length && !this.user.interim.textContent) this.user.el.remove();
    else if (this.user) this.user.interim.textContent = "";
    this.user = null;
  }

  startBot() {
    this.closeUser();
    const bot = this.bubble("bot");
    this.bot = bot;
    this.lastBot = bot;
    this.log.setAttribute("aria-busy", "true"); // announce the reply once, when it is complete
    return bot;
  }

  /** @param {string} text */
  chunk(text) {
    const bot = this.bot || this.startBot();
    part(bot, ".text").textContent += text;
    this.log.scrollTop = this.log.scrollHeight;
  }

  /**
   * The reply is over; `interrupted` marks it (its text may have ended already while its audio was cut).
   * @param {boolean} interrupted
   */
  endBot(interrupted) {
    const el = this.bot || this.lastBot;
    if (el && interrupted) el.classList.add("interrupted");
    this.bot = null;
    this.log.setAttribute("aria-busy", "false");
  }
}

/** @param {number | null | undefined} v */
const ms = (v) => (v === null || v === undefined ? "—" : `${Math.round(v)} ms`);

/** One row per turn: STT, LLM first token and TTS first audio laid end to end, the rest as "other". */
export class Waterfall {
  constructor() {
    this.list = $("turns");
    /** @type {Map<number, HTMLElement>} rows by turn label */
    this.rows = new Map();
  }

  /**
   * Draw these turns (newest on top); rows of turns no longer in the list go.
   * @param {readonly Turn[]} turns
   */
  render(turns) {
    const shown = new Set(turns.map((t) => t.label));
    for (const [label, el] of this.rows) {
      if (!shown.has(label)) {
        el.remove();
        this.rows.delete(label);
      }
    }
    const totals = turns.map((t) => Math.max(t.metrics.voice_to_voice_ms || 0, t.clientV2v || 0, sum(t.metrics)));
    const scale = Math.max(1000, ...totals);
    for (const t of turns) this.renderTurn(t, this.rows.get(t.label) || this.addRow(t.label), scale);
  }

  /** @param {number} label */
  addRow(label) {
    const li = document.createElement("li");
    li.className = "turn";
    li.innerHTML =
      '<div class="head"><span class="name"></span><span class="total"></span></div>' +
      '<div class="track" aria-hidden="true"></div><div class="nums"></div>';
    this.list.prepend(li);
    this.rows.set(label, li);
    return li;
  }

  /**
   * @param {Turn} t
   * @param {HTMLElement} el
   * @param {number} scale
   */
  renderTurn(t, el, scale) {
    const m = t.metrics;
    part(el, ".name").textContent = `Turn ${t.label}${t.typed ? " (typed)" : ""}${t.interrupted ? " · interrupted" : ""}`;
    const v2v = m.voice_to_voice_ms;
    part(el, ".total").textContent = `voice→voice ${ms(v2v)}`;
    const track = part(el, ".track");
    track.textContent = "";
    let at = 0;
    /** @type {Array<[string, number | undefined]>} */
    const parts = [
      ["stt", m.stt_ms],
      ["llm", m.llm_ttft_ms],
      ["tts", m.tts_ttfb_ms],
    ];
    for (const [cls, v] of parts) {
      if (v === null || v === undefined) continue;
      track.append(seg(cls, at, v, scale));
      at += v;
    }
    if (v2v && v2v > at) track.append(seg("other", at, v2v - at, scale));
    if (t.clientV2v !== null && t.clientV2v !== undefined) {
      const mark = document.createElement("div");
      mark.className = "mark";
      mark.style.left = `calc(${Math.min(100, (100 * t.clientV2v) / scale)}% - 2px)`;
      track.append(mark);
    }
    part(el, ".nums").textContent =
      `STT ${ms(m.stt_ms)} · LLM ${ms(m.llm_ttft_ms)} · TTS ${ms(m.tts_ttfb_ms)} · ` +
      `heard after ${ms(t.clientV2v)} (client)`;
  }
}

/** @param {Record<string, number>} m */
function sum(m) {
  return (m.stt_ms || 0) + (m.llm_ttft_ms || 0) + (m.tts_ttfb_ms || 0);
}

/**
 * @param {string} cls
 * @param {number} start
 * @param {number} width
 * @param {number} scale
 */
function seg(cls, start, width, scale) {
  const d = document.createElement("div");
  d.className = `seg ${cls}`;
  d.style.left = `${(100 * start) / scale}%`;
  d.style.width = `${Math.max(0.5, (100 * width) / scale)}%`;
  return d;
}

/**
 * Level meters: linear RMS mapped onto -60..0 dBFS.
 * @param {string} id
 * @param {number} rms
 */
export function setMeter(id, rms) {
  const el = $(id);
  const db = rms > 0 ? 20 * Math.log10(rms) : -100;
  const pct = Math.max(0, Math.min(100, ((db + 60) / 60) * 100));
  /** @type {HTMLElement} */ (el.firstElementChild).style.width = `${pct}%`;
  el.setAttribute("aria-valuenow", String(Math.round(pct)));
}

const CONN_TEXT = {
  connecting: "Connecting…",
  open: "Connected",
  reconnecting: "Reconnecting",
  closed: "Disconnected",
};

/**
 * @param {import("./protocol-state.js").ConnectionState} state
 * @param {string} [detail]
 */
export function showConnection(state, detail = "") {
  const box = $("conn");
  box.dataset.state = state;
  $("conn-text").textContent = CONN_TEXT[state] + (detail ? ` ${detail}` : "");
  $("retry").hidden = state !== "reconnecting";
}

/**
 * @param {string} message
 * @param {boolean} fatal
 */
export function showError(message, fatal) {
  const box = $("error");
  box.hidden = !message;
  box.classList.toggle("fatal", Boolean(fatal));
  box.textContent = fatal ? `The agent cannot run: ${message}` : message || "";
}

/** @param {Record<string, any>} session */
export function showSession(session) {
  const e = session.engines || {};
  $("engines").textContent = `Engines: speech-to-text ${e.stt || "?"} · language model ${e.llm || "?"} · text-to-speech ${e.tts || "?"}`;
  const demo = $("demo");
  demo.hidden = !session.offline_demo;
  if (session.offline_demo) {
    const text = $("demo-text");
    text.textContent =
      e.llm === "echo"
        ? "The agent runs on local engines and repeats what it hears. For the full agent set "
        : "Some stages run on small local engines. For the full agent set ";
    /** @type {string[]} */
    const missing = session.missing || [];
    if (!missing.length) {
      text.textContent = "Some stages run on small local engines because STT_PROVIDER / LLM_PROVIDER / TTS_PROVIDER ask for them.";
      return;
    }
    missing.forEach((name, i) => {
      const code = document.createElement("code");
      code.textContent = name;
      text.append(code, i < missing.length - 1 ? (i === missing.length - 2 ? " and " : ", ") : "");
    });
    text.append(" in .env and restart the server.");
  }
}

const STAGE_NAMES = /** @type {Record<string, string>} */ ({ stt: "speech-to-text", llm: "language model", tts: "text-to-speech" });

/**
 * The last provider error of each stage, under the engines line (hidden when none failed).
 * @param {Record<string, import("./protocol-state.js").StageError>} errors
 */
export function showStageErrors(errors) {
  const list = $("stage-errors");
  list.replaceChildren();
  for (const [stage, error] of Object.entries(errors)) {
    const item = document.createElement("li");
    const when = error.at ? new Date(error.at * 1000).toLocaleTimeString() : "";
    const label = document.createElement("strong");
    label.textContent = `${STAGE_NAMES[stage] || stage} (${error.provider || "?"})`;
    item.append("Last error of ", label, when ? ` at ${when}: ` : ": ", error.message);
    list.append(item);
  }
  list.hidden = list.childElementCount === 0;
}

/** @param {string} text */
export function setAgentState(text) {
  $("agent-state").textContent = text;
}
