// A FAKE stt_browser.js for tests: the same API as the wasm package
// (default init(), Engine.create(opts, emit), engine.handle(msg), engine.free())
// with deterministic fake words instead of a model, so the page, worker,
// download and cache can be tested without weights or a Rust build.
//
// Timing rule: word k covers [0.5k, 0.5k + 0.4] s of received audio and is
// final once 0.48 s (the real model's 6-frame text delay) more audio arrived;
// a partial is shown for it meanwhile. `stop` flushes: every word whose start
// is before the end of audio comes out. Every 8th word ends a turn.
//
// Knobs, in the model's config.json: "synthetic": true → status synthetic;
// "fake_fail_webgpu": true → create() with backend webgpu/auto throws
// [no_adapter]; "fake_file_speed": seconds of audio per 10 ms for files.
// A file whose name starts with "crash" traps (a WebAssembly.RuntimeError,
// as a Rust panic in the real engine does) after its first second.

const WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel',
  'india', 'juliett', 'kilo', 'lima', 'mike', 'november', 'oscar', 'papa'];
const WORD_S = 0.5;
const WORD_LEN_S = 0.4;
const DELAY_S = 0.48;
const FRAME_S = 0.08;

export default async function init() {}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Engine {
  static async create(opts, emit) {
    for (const key of ['config', 'tokenizer']) {
      if (!(opts[key] instanceof Uint8Array)) throw new Error(`[bad_model] ${key} must be a Uint8Array`);
    }
    for (const key of ['lm', 'mimi']) {
      if (!Array.isArray(opts[key]) || !opts[key].length || !opts[key].every((s) => s instanceof Uint8Array)) {
        throw new Error(`[bad_model] ${key} must be a non-empty array of Uint8Array shards`);
      }
    }
    // As the real engine: optional numbers, temperature finite and ≥ 0.
    for (const key of ['temperature', 'seed']) {
      const v = opts[key];
      if (v !== undefined && v !== null && !(typeof v === 'number' && Number.isFinite(v) && v >= 0)) {
        throw new Error(`[bad_input] ${key}: expected a number ≥ 0`);
      }
    }
    let config;
    try {
      config = JSON.parse(new TextDecoder().decode(opts.config));
    } catch {
      throw new Error('[bad_model] config.json is not JSON');
    }
    // The Mimi handed over must be a valid encoder-only safetensors file.
    const mimi = opts.mimi[0];
    const n = Number(new DataView(mimi.buffer, mimi.byteOffset, 8).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(mimi.subarray(8, 8 + n)));
    if (Object.keys(header).some((k) => k.startsWith('decoder'))) throw new Error('[bad_model] Mimi still has its decoder');

    let backend = 'cpu';
    let adapter = 'fake engine (WebAssembly)';
    if (opts.backend !== 'cpu') {
      if (config.fake_fail_webgpu) throw new Error('[no_adapter] no WebGPU adapter was found (fake)');
      const gpu = self.navigator?.gpu;
      const a = gpu ? await gpu.requestAdapter().catch(() => null) : null;
      if (a) {
        backend = 'webgpu';
        const info = a.info || {};
        adapter = [info.vendor, info.architecture || info.description].filter(Boolean).join(' ') || 'WebGPU adapter';
      } else if (opts.backend === 'webgpu') {
        throw new Error('[no_adapter] no WebGPU adapter was found');
      }
    }
    emit({ type: 'status', state: 'warming_up' });
    await sleep(50);
    const engine = new Engine(emit, config);
    emit({ type: 'status', state: 'ready', backend, adapter, synthetic: !!config.synthetic });
    return engine;
  }

  constructor(emit, config) {
    this.emit = emit;
    this.config = config;
    this.resetState();
  }

  resetState() {
    this.audio_s = 0;
    this.nextWord = 0; // index of the next word to finalize
    this.words = [];
    this.turns = [];
    this.started = 0;
  }

  async handle(msg) {
    switch (msg.type) {
      case 'audio':
        if (!(msg.samples instanceof Float32Array) || !(msg.sample_rate > 0)) throw new Error('[internal] bad audio message');
        if (!this.started) this.started = performance.now();
        this.advance(msg.samples.length / msg.sample_rate);
        return;
      case 'file':
        return this.file(msg);
      case 'stop':
        this.flush();
        return;
      case 'reset':
        this.resetState();
        return;
      case 'restore':
        this.resetState();
        this.words = msg.words.map((w, index) => ({ index, ...w }));
        this.nextWord = this.words.length;
        return;
      case 'export':
        return this.render(msg.format);
      default:
        throw new Error(`[internal] unknown request ${msg.type}`);
    }
  }

  free() {}

  advance(seconds) {
    const before = this.audio_s;
    this.audio_s += seconds;
    // Final words: those whose end + delay is now covered.
    while (WORD_S * this.nextWord + WORD_LEN_S + DELAY_S <= this.audio_s) this.finalize(this.nextWord);
    // Partial for the word being spoken.
    const k = this.nextWord;
    if (WORD_S * k + DELAY_S < this.audio_s) {
      const word = WORDS[k % WORDS.length];
      const shown = Math.max(1, Math.ceil(word.length * Math.min(1, (this.audio_s - WORD_S * k - DELAY_S) / WORD_LEN_S)));
      this.emit({ type: 'partial', text: word.slice(0, shown), start_s: WORD_S * k });
    }
    if (Math.floor(before) !== Math.floor(this.audio_s)) this.stats();
  }

  finalize(k) {
    const w = { index: k, text: WORDS[k % WORDS.length], start_s: WORD_S * k, end_s: WORD_S * k + WORD_LEN_S };
    this.words.push(w);
    this.emit({ type: 'word', ...w });
    this.nextWord = k + 1;
    if ((k + 1) % 8 === 0) {
      this.turns.push(w.end_s);
      this.emit({ type: 'end_of_turn', time_s: w.end_s + 0.2 });
    }
  }

  flush() {
    while (WORD_S * this.nextWord < this.audio_s) this.finalize(this.nextWord);
    this.emit({ type: 'partial', text: '', start_s: this.audio_s });
    this.stats();
  }

  stats() {
    const elapsed_s = this.started ? (performance.now() - this.started) / 1000 : 0;
    this.emit({
      type: 'stats',
      audio_s: this.audio_s,
      elapsed_s,
      realtime_factor: this.audio_s ? elapsed_s / this.audio_s : 0,
      steps: Math.floor(this.audio_s / FRAME_S),
    });
  }

  async file(msg) {
    const duration = decodeDuration(msg.bytes, msg.name);
    this.resetState();
    this.started = performance.now();
    const perTick = this.config.fake_file_speed || 1.0; // seconds of audio per 10 ms
    for (let t = 0; t < duration; t += perTick) {
      const step = Math.min(perTick, duration - t);
      this.advance(step);
      this.emit({ type: 'progress', phase: 'file', file: msg.name, loaded: t + step, total: duration });
      await sleep(10);
      if (/^crash/.test(msg.name) && t + step >= 1) throw new WebAssembly.RuntimeError('unreachable executed');
    }
    this.flush();
  }

  render(format) {
    const ts = (s, sep) => {
      const ms = Math.round(s * 1000);
      const p = (n, w = 2) => String(n).padStart(w, '0');
      return `${p(Math.floor(ms / 3600000))}:${p(Math.floor(ms / 60000) % 60)}:${p(Math.floor(ms / 1000) % 60)}${sep}${p(ms % 1000, 3)}`;
    };
    const lines = [];
    for (let i = 0; i < this.words.length; i += 8) lines.push(this.words.slice(i, i + 8));
    switch (format) {
      case 'txt':
        return lines.map((l) => l.map((w) => w.text).join(' ')).join('\n') + (lines.length ? '\n' : '');
      case 'srt':
        return lines.map((l, i) => `${i + 1}\n${ts(l[0].start_s, ',')} --> ${ts(l[l.length - 1].end_s, ',')}\n${l.map((w) => w.text).join(' ')}\n`).join('\n');
      case 'vtt':
        return 'WEBVTT\n\n' + lines.map((l) => `${ts(l[0].start_s, '.')} --> ${ts(l[l.length - 1].end_s, '.')}\n${l.map((w) => w.text).join(' ')}\n`).join('\n');
      case 'json':
        return JSON.stringify({ words: this.words.map(({ text, start_s, end_s }) => ({ text, start_s, end_s })) }, null, 2) + '\n';
      default:
        throw new Error(`[internal] unknown export format ${format}`);
    }
  }
}

/** Duration of a WAV (from its header) or an MP3 (assuming 128 kbit/s);
 * anything else is "not audio", like the real decoder would say. */
function decodeDuration(bytes, name) {
  const ascii = (at, n) => String.fromCharCode(...bytes.subarray(at, at + n));
  if (bytes.length > 44 && ascii(0, 4) === 'RIFF' && ascii(8, 4) === 'WAVE') {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let at = 12;
    let byteRate = 0;
    while (at + 8 <= bytes.length) {
      const id = ascii(at, 4);
      const size = dv.getUint32(at + 4, true);
      if (id === 'fmt ') byteRate = dv.getUint32(at + 16, true);
      if (id === 'data' && byteRate) return Math.min(size, bytes.length - at - 8) / byteRate;
      at += 8 + size + (size & 1);
    }
  }
  const mp3 = ascii(0, 3) === 'ID3' || (bytes[0] === 0xff && (bytes[1] & 0xe0) === 0xe0);
  if (mp3) return (bytes.length * 8) / 128000;
  throw new Error(`[bad_audio] "${name}" is not an audio file this app can read (unknown format)`);
}
