// app.js — the page: wires the UI to SttClient. UI and microphone only; all
// inference runs in the worker. State lives in a few variables below; the DOM
// is updated from the client's events.

import { SttClient } from './stt-client.js';
import { MODEL_SIZES, isModelCached, hasCachedFiles, clearModelCache, storageEstimate } from './model-store.js';

const $ = (id) => document.getElementById(id);
const SETTINGS_KEY = 'stt-web.settings';

// ------------------------------------------------------------ settings
// Query parameters win and are remembered: ?model=BASE_URL&backend=cpu|webgpu|auto&temperature=T.

// Text sampling temperature: 0 (greedy, exactly upstream's choice) up to 2.
function validTemperature(t) {
  const v = Number(t);
  return Number.isFinite(v) && v >= 0 && v <= 2 ? v : 0;
}

function loadSettings() {
  let saved = {};
  try {
    saved = JSON.parse(localStorage.getItem(SETTINGS_KEY) || '{}');
  } catch {
    /* private mode or garbage: defaults */
  }
  const q = new URLSearchParams(location.search);
  if (q.has('model')) saved.baseUrl = q.get('model') || '';
  if (['auto', 'webgpu', 'cpu'].includes(q.get('backend'))) saved.backend = q.get('backend');
  if (q.has('temperature')) saved.temperature = validTemperature(q.get('temperature'));
  const settings = {
    baseUrl: saved.baseUrl || '',
    backend: ['auto', 'webgpu', 'cpu'].includes(saved.backend) ? saved.backend : 'auto',
    lmFile: saved.lmFile === 'model-q80.gguf' ? 'model-q80.gguf' : 'model-q4k.gguf',
    temperature: validTemperature(saved.temperature),
  };
  saveSettings(settings);
  return settings;
}

function saveSettings(s) {
  try {
    localStorage.setItem(SETTINGS_KEY, JSON.stringify(s));
  } catch {
    /* storage unavailable: settings last for this visit */
  }
}

const settings = loadSettings();

// ------------------------------------------------------------ formatting

function formatBytes(n) {
  if (!Number.isFinite(n) || n <= 0) return '0 MB';
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e8 ? 0 : 1)} MB`;
  return `${Math.max(1, Math.round(n / 1e3))} kB`;
}

/** 83.4 → "1:23.4" */
function formatTime(s) {
  const m = Math.floor(s / 60);
  return `${m}:${(s - m * 60).toFixed(1).padStart(4, '0')}`;
}

function formatClock(s) {
  const m = Math.floor(s / 60);
  return `${m}:${String(Math.floor(s % 60)).padStart(2, '0')}`;
}

// ------------------------------------------------------------ banners & toasts

/** Plain-language texts for error codes; `action` names a retry button. */
const ERRORS = {
  no_webgpu: { title: 'No WebGPU in this browser', text: 'Running on the CPU instead — it may be slower than real time.', level: 'warn' },
  no_adapter: { title: 'No usable GPU found', text: 'Running on the CPU instead — it may be slower than real time.', level: 'warn' },
  insecure_context: {
    title: 'This page is not secure',
    text: 'The microphone and on-device storage need https:// (or localhost). Open the page over HTTPS.',
  },
  mic_denied: {
    title: 'Microphone blocked',
    text: 'Allow the microphone for this site (the icon in the address bar), then try again. You can also transcribe a file.',
    action: 'record',
  },
  no_microphone: { title: 'No microphone found', text: 'Plug one in, or transcribe an audio file instead.', action: 'record' },
  mic_busy: { title: 'Microphone unavailable', text: 'Another application is using it. Close it and try again.', action: 'record' },
  out_of_memory: {
    title: 'Not enough memory',
    text: 'Your device ran out of memory for the model. Close other tabs (or choose Q4_K, the smaller model) and try again.',
    action: 'load',
  },
  download_failed: { title: 'Download failed', text: 'The model could not be downloaded. Check your connection and retry.', action: 'load' },
  quota_exceeded: { title: 'Not enough storage', text: 'The model is kept in memory for this visit only.', level: 'warn' },
  bad_audio: { title: 'Could not read that file', text: 'It does not look like audio this app can decode. Try WAV, MP3, FLAC, OGG, Opus, M4A, or an MP4/WebM video.' },
  bad_model: { title: 'The model files are not valid', text: 'Remove the downloaded model and download it again, or check the model location in Settings.', action: 'reinstall' },
  model_origin: {
    title: 'That model location is not allowed',
    text: 'This page loads models only from its own site and huggingface.co, so that nothing else can reach it. Put the model files beside the page, or change the location in Settings.',
  },
  engine_crashed: {
    title: 'The speech engine stopped unexpectedly',
    text: 'It was restarted with the same model; the transcript so far is kept.',
    level: 'warn',
  },
  device_lost: { title: 'The GPU stopped responding', text: 'Reload the model to continue. If it keeps happening, choose CPU in Settings.', action: 'load' },
  not_loaded: { title: 'The model is not loaded yet', text: 'Download and load the model first.' },
  model_mismatch: {
    title: 'A downloaded model file does not match',
    text: 'It differs from the version this app was built for (vendor/models.json), so it was not used or kept. The files may have changed upstream: try again later, or update the app.',
    action: 'load',
  },
  internal: { title: 'Something went wrong', text: '' },
};

const ICONS = {
  error: '<svg class="banner-icon" viewBox="0 0 20 20" fill="currentColor" aria-hidden="true"><path fill-rule="evenodd" d="M10 18a8 8 0 1 0 0-16 8 8 0 0 0 0 16ZM9 6a1 1 0 1 1 2 0v4a1 1 0 1 1-2 0V6Zm1 8.5a1.2 1.2 0 1 0 0-2.4 1.2 1.2 0 0 0 0 2.4Z"/></svg>',
  warn: '<svg class="banner-icon" viewBox="0 0 20 20" fill="currentColor" aria-hidden="true"><path fill-rule="evenodd" d="M8.3 3.1a2 2 0 0 1 3.4 0l6 10.4A2 2 0 0 1 16 16.5H4a2 2 0 0 1-1.7-3L8.3 3.1ZM10 7a1 1 0 0 0-1 1v3a1 1 0 1 0 2 0V8a1 1 0 0 0-1-1Zm0 8a1.1 1.1 0 1 0 0-2.2A1.1 1.1 0 0 0 10 15Z"/></svg>',
  info: '<svg class="banner-icon" viewBox="0 0 20 20" fill="currentColor" aria-hidden="true"><path fill-rule="evenodd" d="M10 18a8 8 0 1 0 0-16 8 8 0 0 0 0 16Zm-1-9a1 1 0 1 1 2 0v5a1 1 0 1 1-2 0V9Zm1-4.2a1.2 1.2 0 1 0 0 2.4 1.2 1.2 0 0 0 0-2.4Z"/></svg>',
};

const ACTIONS = {
  load: { label: 'Retry', run: () => startLoad() },
  record: { label: 'Try again', run: () => toggleRecord() },
  reinstall: {
    label: 'Remove & download again',
    run: async () => {
      await clearModelCache();
      startLoad();
    },
  },
};

/**
 * Shows a banner; one per `key` (a newer one replaces it).
 * @returns {HTMLElement}
 */
function showBanner({ key, level = 'error', title, text, action, detail }) {
  const banners = $('banners');
  banners.querySelector(`[data-key="${key}"]`)?.remove();
  const el = document.createElement('div');
  el.className = `banner banner-${level}`;
  el.dataset.key = key;
  el.setAttribute('role', level === 'error' ? 'alert' : 'status');
  el.innerHTML = `${ICONS[level] || ICONS.info}<div class="banner-text"><strong></strong><span></span></div><div class="banner-actions"></div><button class="close" type="button" aria-label="Dismiss">×</button>`;
  el.querySelector('strong').textContent = title;
  el.querySelector('span').textContent = [text, detail].filter(Boolean).join(' ');
  if (action && ACTIONS[action]) {
    const b = document.createElement('button');
    b.className = 'btn';
    b.type = 'button';
    b.textContent = ACTIONS[action].label;
    b.dataset.action = action;
    b.addEventListener('click', () => {
      el.remove();
      ACTIONS[action].run();
    });
    el.querySelector('.banner-actions').append(b);
  }
  el.querySelector('.close').addEventListener('click', () => el.remove());
  banners.append(el);
  return el;
}

function clearBanner(key) {
  $('banners').querySelector(`[data-key="${key}"]`)?.remove();
}

function showError({ code, message }) {
  const e = ERRORS[code] || ERRORS.internal;
  // The engine's message is technical; show it after the plain sentence only
  // where it helps (which file failed, what the server said).
  const detail = ['download_failed', 'bad_model', 'model_origin', 'model_mismatch', 'internal', 'bad_audio', 'device_lost'].includes(code) && message ? `(${message})` : '';
  showBanner({ key: `error-${code}`, level: e.level || 'error', title: e.title, text: e.text || message, action: e.action, detail });
}

let toastTimer;
function toast(text) {
  const t = $('toast');
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (t.hidden = true), 2400);
}

// ------------------------------------------------------------ model card

let modelState = 'absent'; // absent | cached | downloading | loading | ready | error
let loadedLm = null; // the LM file of the loaded model
let cardExpanded = false; // the user asked to see the model choice again
let memoryOnly = false; // the model could not be stored (quota)
let actualLm = null; // the LM file the worker loaded (a custom location may lack the chosen one)
const escapeHtml = (t) => String(t).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const LM_NAMES = {
  'model-q4k.gguf': 'Q4_K',
  'model-q80.gguf': 'Q8_0',
  'model-q40.gguf': 'Q4_0',
  'model.safetensors': 'bf16 (model.safetensors)',
};
const fileRows = new Map();

function setModelState(state, label) {
  modelState = state;
  const badge = $('model-state');
  const labels = {
    absent: 'Not downloaded',
    cached: 'On this device',
    downloading: 'Downloading…',
    loading: 'Loading…',
    ready: 'Ready',
    error: 'Not loaded',
  };
  badge.textContent = label || labels[state];
  badge.dataset.state = state === 'downloading' || state === 'loading' ? 'busy' : state;
  const busy = state === 'downloading' || state === 'loading';
  const btn = $('load-btn');
  btn.disabled = busy;
  btn.hidden = state === 'ready' && loadedLm === settings.lmFile;
  btn.textContent =
    state === 'error'
      ? 'Retry'
      : state === 'cached'
        ? 'Load model'
        : state === 'ready'
          ? 'Load this model'
          : state === 'downloading'
            ? 'Downloading…'
            : busy
              ? 'Loading…'
              : 'Download & load';
  for (const input of document.querySelectorAll('#lm-choice input')) input.disabled = busy;
  // Loaded: shrink the card to one line (the user can expand it again).
  const compact = state === 'ready' && loadedLm === settings.lmFile && !cardExpanded;
  $('model-card').classList.toggle('compact', compact);
  $('change-btn').hidden = !compact;
  $('model-summary').hidden = !compact;
  if (compact) {
    const file = actualLm || loadedLm;
    const name = escapeHtml(LM_NAMES[file] || file);
    const substituted =
      actualLm && actualLm !== loadedLm ? ` (${escapeHtml(LM_NAMES[loadedLm] || loadedLm)} is not at this model location)` : '';
    $('model-summary').innerHTML = `<b>${name}</b> is loaded${substituted}${memoryOnly ? ', in memory only for this visit' : ', kept on this device for offline use'}.`;
  }
  updateInputs();
}

function updateDownloadSize() {
  const lm = MODEL_SIZES[settings.lmFile];
  const total = lm + MODEL_SIZES.mimiEncoder + MODEL_SIZES.tokenizerAndConfig;
  $('download-size').innerHTML =
    `Download: <b>≈ ${formatBytes(total)}</b> — language model ${formatBytes(lm)}, audio encoder ${formatBytes(MODEL_SIZES.mimiEncoder)}, tokenizer and config. ` +
    'Downloaded once, then it works offline.';
}

async function updateStorage() {
  const [est, stored] = await Promise.all([storageEstimate(), hasCachedFiles()]);
  // Offer removal whenever something is stored, even a half-finished download.
  $('remove-btn').hidden = !stored;
  $('storage').textContent = !est
    ? ''
    : est.usage < 1e5
      ? `Nothing stored yet · ${formatBytes(est.quota)} available to this site.`
      : `Storage used by this site: ${formatBytes(est.usage)} of ${formatBytes(est.quota)} available.`;
}

async function refreshCachedState() {
  if (modelState === 'downloading' || modelState === 'loading') return false;
  const cached = await isModelCached(settings.baseUrl || null, settings.lmFile);
  if (modelState === 'ready' && loadedLm === settings.lmFile) return cached;
  setModelState(cached ? 'cached' : 'absent');
  return cached;
}

function onProgress(p) {
  if (p.phase === 'file') return onFileProgress(p);
  $('downloads').hidden = false;
  if (modelState === 'downloading') $('model-state').textContent = p.cached ? 'Reading…' : 'Downloading…';
  let row = fileRows.get(p.file);
  if (!row) {
    row = document.createElement('li');
    row.className = 'file-row';
    row.dataset.file = p.file;
    row.innerHTML = '<span class="file-name"></span><span class="file-bytes num"></span><div class="bar"><span></span></div>';
    row.querySelector('.file-name').textContent = p.file;
    $('file-list').append(row);
    fileRows.set(p.file, row);
  }
  row.loaded = p.loaded;
  row.total = p.total || p.loaded;
  const pct = row.total ? Math.min(100, (100 * p.loaded) / row.total) : 0;
  row.querySelector('.bar > span').style.width = `${pct}%`;
  row.querySelector('.file-bytes').textContent = p.cached
    ? `${formatBytes(row.total)} · from this device`
    : `${formatBytes(p.loaded)} / ${formatBytes(row.total)} · ${Math.floor(pct)}%`;
  if (p.loaded >= row.total && row.total > 0) row.dataset.done = '';
  let loaded = 0;
  let total = 0;
  for (const r of fileRows.values()) {
    loaded += r.loaded || 0;
    total += r.total || 0;
  }
  $('overall-text').textContent = p.cached ? 'Reading the model from this device' : `Downloading ${formatBytes(loaded)} of ${formatBytes(total)}`;
  $('overall-pct').textContent = total ? `${Math.floor((100 * loaded) / total)}%` : '';
}

async function startLoad() {
  if (modelState === 'downloading' || modelState === 'loading') return;
  for (const k of ['error-download_failed', 'error-out_of_memory', 'error-bad_model', 'error-model_mismatch', 'error-model_origin', 'error-device_lost', 'error-internal', 'error-not_loaded']) clearBanner(k);
  if (recording) await stopRecording();
  fileRows.clear();
  $('file-list').replaceChildren();
  $('overall-text').textContent = 'Preparing…';
  $('overall-pct').textContent = '';
  $('downloads').hidden = false;
  loadedLm = null;
  actualLm = null;
  cardExpanded = false;
  setModelState('downloading', 'Starting…');
  try {
    await client.load({
      baseUrl: settings.baseUrl || null,
      lmFile: settings.lmFile,
      backend: settings.backend,
      temperature: settings.temperature,
    });
    loadedLm = settings.lmFile;
    setModelState('ready');
    $('overall-text').textContent = 'Model loaded';
    setTimeout(() => {
      if (modelState === 'ready') $('downloads').hidden = true;
    }, 1200);
  } catch {
    $('overall-text').textContent = 'Stopped — see the message above';
    setModelState('error'); // the error event already showed the banner
  }
  updateStorage();
}

// ------------------------------------------------------------ status & stats

const STATUS_TEXT = {
  idle: 'Model not loaded',
  downloading: 'Downloading the model…',
  loading: 'Loading the model…',
  warming_up: 'Warming up…',
  ready: 'Ready',
  transcribing: 'Transcribing…',
  error: 'Error',
};

let engineState = 'idle';

/** Footer status: what the user is doing wins over the engine's own state. */
function renderStatus() {
  const [state, text] = recording
    ? ['transcribing', 'Listening…']
    : fileBusy
      ? ['transcribing', 'Transcribing the file…']
      : [engineState, STATUS_TEXT[engineState] || engineState];
  $('status-dot').dataset.state = state;
  $('status-text').textContent = text;
}

function onStatus(s) {
  if (s.state) {
    engineState = s.state;
    renderStatus();
    if (s.state === 'loading' || s.state === 'warming_up') setModelState('loading', s.state === 'warming_up' ? 'Warming up…' : 'Loading…');
    if (s.state === 'downloading' && modelState !== 'downloading') setModelState('downloading');
    if (s.memory_only !== undefined) memoryOnly = !!s.memory_only;
    if (s.lm_file) actualLm = s.lm_file;
  }
  if (s.backend) {
    const text =
      s.backend === 'webgpu' ? `WebGPU · ${s.adapter || 'GPU'}` : s.adapter ? `CPU · ${s.adapter}` : 'CPU (WebAssembly SIMD)';
    $('backend-text').textContent = text;
    $('backend-pill').dataset.backend = s.backend;
    $('backend-pill').title = `The model runs on: ${text}`;
    $('backend-pill').hidden = false;
  }
  if (s.synthetic !== undefined) $('synthetic-banner').hidden = !s.synthetic;
  if (s.notice && !(s.code === 'insecure_context' && !window.isSecureContext)) {
    let detail = '';
    if (s.code === 'quota_exceeded' && s.storage) {
      detail = `(Storage: ${formatBytes(s.storage.usage)} used of ${formatBytes(s.storage.quota)}.)`;
    }
    const e = ERRORS[s.code];
    const warn = e?.level === 'warn' || !s.code || s.code === 'device_lost';
    showBanner({ key: `notice-${s.code || 'general'}`, level: warn ? 'warn' : 'info', title: e?.title || 'Note', text: s.notice, detail });
  }
}

function onStats(s) {
  $('stats-sep').hidden = false;
  $('stats-text').hidden = false;
  const speed = s.realtime_factor > 0 ? 1 / s.realtime_factor : 0;
  const speedText = speed ? ` (${speed >= 10 ? speed.toFixed(0) : speed.toFixed(1)}× real time)` : '';
  $('stats-text').textContent = `RTF ${s.realtime_factor.toFixed(2)}${speedText} · ${formatTime(s.audio_s)} of audio`;
  $('stats-text').title = `${s.steps} model steps in ${s.elapsed_s.toFixed(1)} s`;
}

// ------------------------------------------------------------ transcript

const wordEls = new Map(); // word index → span
let para = null; // current paragraph
let partialEl = null;
let wordCount = 0;

function ensurePara() {
  if (!para) {
    $('placeholder').hidden = true;
    para = document.createElement('p');
    $('transcript').append(para);
  }
  return para;
}

/** Keeps the newest words in view unless the user scrolled up to read. */
function stickToBottom(fn) {
  const box = $('transcript');
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  fn();
  if (atBottom) box.scrollTop = box.scrollHeight;
}

function onWord(w) {
  stickToBottom(() => {
    let el = wordEls.get(w.index);
    if (!el) {
      const p = ensurePara();
      el = document.createElement('span');
      el.className = 'w fresh';
      el.dataset.index = w.index;
      // Words are separated by spaces; the partial always stays last.
      const before = partialEl && partialEl.parentNode === p ? partialEl : null;
      if (p.querySelector('.w')) p.insertBefore(document.createTextNode(' '), before);
      p.insertBefore(el, before);
      wordEls.set(w.index, el);
      wordCount++;
      timelineAdd(w);
    } else {
      timelineUpdate(w);
    }
    el.textContent = w.text;
    el.dataset.start = w.start_s;
    el.dataset.end = w.end_s;
    el.title = `${formatTime(w.start_s)} – ${formatTime(w.end_s)}`;
    if (partialEl && partialEl.dataset.start && Number(partialEl.dataset.start) <= w.start_s) setPartial('');
  });
  updateToolbar();
}

function setPartial(text, start_s) {
  if (!text) {
    partialEl?.remove();
    partialEl = null;
    return;
  }
  stickToBottom(() => {
    const p = ensurePara();
    if (!partialEl) {
      partialEl = document.createElement('span');
      partialEl.className = 'partial';
      partialEl.title = 'Still listening — this word may change';
    }
    if (p.lastChild !== partialEl) p.append(partialEl); // always last
    partialEl.textContent = text; // the gap before it is CSS, so the underline skips it
    partialEl.dataset.start = start_s ?? '';
  });
}

function onEndOfTurn({ time_s }) {
  if (!para || !para.querySelector('.w')) return; // no empty paragraphs
  const mark = document.createElement('span');
  mark.className = 'eot';
  mark.textContent = '¶';
  mark.title = `End of turn at ${formatTime(time_s)}`;
  mark.dataset.time = time_s;
  const before = partialEl && partialEl.parentNode === para ? partialEl : null;
  para.insertBefore(mark, before);
  // A partial already shown belongs to the next turn: move it along.
  para = null;
  if (before) ensurePara().append(before);
  const li = document.createElement('li');
  li.className = 'turn';
  li.textContent = `End of turn · ${formatTime(time_s)}`;
  timelineList().append(li);
}

function clearTranscript() {
  wordEls.clear();
  wordCount = 0;
  para = null;
  partialEl = null;
  const box = $('transcript');
  box.replaceChildren($('placeholder'));
  $('placeholder').hidden = false;
  $('timeline').replaceChildren();
  timelineList();
  updateToolbar();
}

// Timeline: one row per word with its start time; hover links both views.
function timelineList() {
  let ol = $('timeline').querySelector('ol');
  if (!ol) {
    ol = document.createElement('ol');
    $('timeline').append(ol);
  }
  return ol;
}

function timelineAdd(w) {
  const li = document.createElement('li');
  li.dataset.index = w.index;
  li.innerHTML = '<span class="t"></span><span class="x"></span>';
  timelineList().append(li);
  timelineUpdate(w, li);
  const tl = $('timeline');
  if (!tl.hidden) tl.scrollTop = tl.scrollHeight;
}

function timelineUpdate(w, li = $('timeline').querySelector(`li[data-index="${w.index}"]`)) {
  if (!li) return;
  li.querySelector('.t').textContent = formatTime(w.start_s);
  li.querySelector('.x').textContent = w.text;
  li.title = `${formatTime(w.start_s)} – ${formatTime(w.end_s)}`;
}

function highlight(index, on) {
  wordEls.get(Number(index))?.classList.toggle('hl', on);
  $('timeline').querySelector(`li[data-index="${index}"]`)?.classList.toggle('hl', on);
}

// Floating tooltip with the word's time span (faster and prettier than title).
function setupTooltip() {
  const tip = $('tooltip');
  const show = (e) => {
    const w = e.target.closest('.w, .eot');
    if (!w) return;
    const r = w.getBoundingClientRect();
    tip.textContent = w.classList.contains('eot')
      ? `end of turn · ${formatTime(Number(w.dataset.time))}`
      : `${formatTime(Number(w.dataset.start))} → ${formatTime(Number(w.dataset.end))}`;
    tip.style.left = `${r.left + r.width / 2}px`;
    tip.style.top = `${r.top - 6}px`;
    tip.hidden = false;
    if (w.dataset.index) highlight(w.dataset.index, true);
  };
  const hide = (e) => {
    const w = e.target.closest('.w, .eot');
    if (!w) return;
    tip.hidden = true;
    if (w.dataset.index) highlight(w.dataset.index, false);
  };
  $('transcript').addEventListener('mouseover', show);
  $('transcript').addEventListener('mouseout', hide);
  $('transcript').addEventListener('scroll', () => (tip.hidden = true));
  $('timeline').addEventListener('mouseover', (e) => {
    const li = e.target.closest('li[data-index]');
    if (li) highlight(li.dataset.index, true);
  });
  $('timeline').addEventListener('mouseout', (e) => {
    const li = e.target.closest('li[data-index]');
    if (li) highlight(li.dataset.index, false);
  });
}

// ------------------------------------------------------------ recording

let recording = false;
let recordBusy = false;
let fileBusy = false;
let timerStart = 0;
let timerId = 0;

function updateInputs() {
  const ready = modelState === 'ready';
  const rb = $('record-btn');
  rb.disabled = (!ready && !recording) || fileBusy || recordBusy;
  rb.setAttribute('aria-pressed', String(recording));
  rb.querySelector('.record-label').textContent = recording ? 'Stop' : 'Record';
  rb.toggleAttribute('data-busy', recordBusy);
  $('live-dot').hidden = !recording;
  renderStatus();
  $('dropzone').setAttribute('aria-disabled', String(!ready || recording || fileBusy));
  $('file-input').disabled = !ready || recording || fileBusy;
  $('record-hint').textContent = !ready
    ? 'Load the model to start.'
    : recording
      ? 'Listening… speak in English or French.'
      : fileBusy
        ? 'Transcribing a file…'
        : wordCount
          ? 'Record again to start a new transcript.'
          : 'Click Record and start speaking.';
}

function updateToolbar() {
  const empty = wordCount === 0;
  $('copy-btn').disabled = empty;
  $('clear-btn').disabled = empty && !recording;
  $('export-btn').setAttribute('aria-disabled', String(empty));
  if (empty) $('export-menu').open = false;
}

/** When Stop was pressed: a second press of a double click must not start
 * a new recording (the button says Record again once the flush is done). */
let stoppedAt = -Infinity;
const DOUBLE_CLICK_MS = 500;

async function toggleRecord() {
  if (recordBusy) return;
  if (recording) return stopRecording();
  if (modelState !== 'ready' || performance.now() - stoppedAt < DOUBLE_CLICK_MS) return;
  recordBusy = true;
  updateInputs();
  for (const k of ['error-mic_denied', 'error-no_microphone', 'error-mic_busy']) clearBanner(k);
  try {
    await client.reset();
    clearTranscript();
    await client.startMicrophone();
    recording = true;
    timerStart = performance.now();
    $('timer').textContent = '0:00';
    timerId = setInterval(() => ($('timer').textContent = formatClock((performance.now() - timerStart) / 1000)), 250);
  } catch {
    /* shown by the error event */
  } finally {
    recordBusy = false;
    updateInputs();
    updateToolbar();
  }
}

async function stopRecording() {
  if (!recording) return;
  recording = false;
  stoppedAt = performance.now();
  recordBusy = true;
  clearInterval(timerId);
  $('meter-bar').style.width = '0';
  updateInputs();
  $('record-hint').textContent = 'Finishing the last words…';
  try {
    await client.stop(); // flush: the last words arrive before this resolves
  } catch {
    /* shown by the error event */
  } finally {
    setPartial('');
    recordBusy = false;
    updateInputs();
    updateToolbar();
  }
}

// ------------------------------------------------------------ files

function onFileProgress(p) {
  const pct = p.total ? Math.min(100, (100 * p.loaded) / p.total) : 0;
  $('file-job-bar').style.width = `${pct}%`;
  $('file-job-pct').textContent = `${formatTime(p.loaded)} / ${formatTime(p.total)} · ${Math.floor(pct)}%`;
}

async function transcribeFile(file) {
  if (!file) return;
  if (modelState !== 'ready') {
    showError({ code: 'not_loaded' });
    return;
  }
  if (recording || fileBusy) return;
  clearBanner('error-bad_audio');
  fileBusy = true;
  updateInputs();
  $('file-job').hidden = false;
  $('file-job-name').textContent = file.name || 'audio';
  $('file-job-bar').style.width = '0';
  $('file-job-pct').textContent = 'Reading…';
  try {
    await client.reset();
    clearTranscript();
    await client.transcribeFile(file);
    $('file-job-bar').style.width = '100%';
    $('file-job-pct').textContent = 'Done';
    setTimeout(() => {
      if (!fileBusy) $('file-job').hidden = true;
    }, 1500);
  } catch {
    $('file-job').hidden = true; // the error event shows why
  } finally {
    setPartial('');
    fileBusy = false;
    $('file-input').value = '';
    updateInputs();
    updateToolbar();
  }
}

function setupDropzone() {
  const dz = $('dropzone');
  $('file-input').addEventListener('change', (e) => transcribeFile(e.target.files[0]));
  // Dropping anywhere on the page works; outside the zone, prevent the browser
  // from navigating to the file.
  window.addEventListener('dragover', (e) => {
    e.preventDefault();
    dz.classList.add('dragover');
  });
  window.addEventListener('dragleave', (e) => {
    if (!e.relatedTarget) dz.classList.remove('dragover');
  });
  window.addEventListener('drop', (e) => {
    e.preventDefault();
    dz.classList.remove('dragover');
    const file = e.dataTransfer?.files?.[0];
    if (file) transcribeFile(file);
  });
}

// ------------------------------------------------------------ export

const EXPORT_TYPES = {
  txt: 'text/plain;charset=utf-8',
  srt: 'application/x-subrip;charset=utf-8',
  vtt: 'text/vtt;charset=utf-8',
  json: 'application/json;charset=utf-8',
};

async function exportAs(format) {
  $('export-menu').open = false;
  try {
    const text = await client.export(format);
    const stamp = new Date().toISOString().slice(0, 16).replace(/[-:]/g, '').replace('T', '-');
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([text], { type: EXPORT_TYPES[format] }));
    a.download = `transcript-${stamp}.${format}`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
    toast(`Saved ${a.download}`);
  } catch {
    /* shown by the error event */
  }
}

async function copyTranscript() {
  try {
    const text = await client.export('txt');
    await navigator.clipboard.writeText(text);
    toast('Copied to clipboard');
  } catch {
    toast('Could not copy — use Export instead');
  }
}

// ------------------------------------------------------------ wiring

const client = new SttClient();
window.sttClient = client; // handy from the console and for tests

client.addEventListener('status', (e) => onStatus(e.detail));
client.addEventListener('progress', (e) => onProgress(e.detail));
client.addEventListener('word', (e) => onWord(e.detail));
client.addEventListener('partial', (e) => setPartial(e.detail.text, e.detail.start_s));
client.addEventListener('endOfTurn', (e) => onEndOfTurn(e.detail));
client.addEventListener('stats', (e) => onStats(e.detail));
client.addEventListener('error', (e) => {
  showError(e.detail);
  if (e.detail.code === 'engine_crashed') onEngineCrashed();
});
client.addEventListener('restarted', () => {
  setModelState('ready');
  updateInputs();
});

/** The client is restarting its worker: the live stream has ended. */
function onEngineCrashed() {
  if (recording) {
    recording = false;
    clearInterval(timerId);
    $('meter-bar').style.width = '0';
  }
  setPartial('');
  setModelState('loading', 'Restarting…');
  updateInputs();
  updateToolbar();
}
client.addEventListener('level', (e) => {
  // The capture's last chunks arrive after Stop: the meter stays at rest.
  if (!recording) return;
  $('meter-bar').style.width = `${Math.min(100, Math.sqrt(e.detail.rms) * 180)}%`;
});

function setupSettings() {
  const url = $('model-url');
  const backend = $('backend');
  const temperature = $('temperature');
  url.value = settings.baseUrl;
  backend.value = settings.backend;
  const t = String(settings.temperature);
  if (![...temperature.options].some((o) => o.value === t)) {
    temperature.add(new Option(`Sampled, temperature ${t}`, t));
  }
  temperature.value = t;
  if (settings.baseUrl || settings.backend !== 'auto' || settings.temperature !== 0) {
    $('settings').open = true;
  }
  const changed = async () => {
    settings.baseUrl = url.value.trim();
    settings.backend = backend.value;
    settings.temperature = validTemperature(temperature.value);
    saveSettings(settings);
    if (modelState === 'ready') {
      loadedLm = null; // the next load applies the new settings
      setModelState('ready', 'Ready · reload to apply');
    } else {
      await refreshCachedState();
    }
  };
  url.addEventListener('change', changed);
  backend.addEventListener('change', changed);
  temperature.addEventListener('change', changed);

  for (const input of document.querySelectorAll('#lm-choice input')) {
    input.checked = input.value === settings.lmFile;
    input.addEventListener('change', async () => {
      settings.lmFile = input.value;
      saveSettings(settings);
      updateDownloadSize();
      if (modelState === 'ready') setModelState('ready', loadedLm === settings.lmFile ? 'Ready' : 'Ready · other size loaded');
      else await refreshCachedState();
    });
  }
}

async function main() {
  setupSettings();
  setupTooltip();
  setupDropzone();
  updateDownloadSize();
  clearTranscript();
  setModelState('absent');

  $('load-btn').addEventListener('click', () => startLoad());
  $('change-btn').addEventListener('click', () => {
    cardExpanded = true;
    setModelState(modelState);
  });
  $('remove-btn').addEventListener('click', async () => {
    await clearModelCache();
    toast(modelState === 'ready' ? 'Removed from this device (still loaded for this visit)' : 'Downloaded model removed');
    await refreshCachedState();
    updateStorage();
  });
  $('record-btn').addEventListener('click', () => toggleRecord());
  $('copy-btn').addEventListener('click', () => copyTranscript());
  $('clear-btn').addEventListener('click', async () => {
    if (recording) await stopRecording();
    await client.reset().catch(() => {});
    clearTranscript();
    $('stats-text').hidden = $('stats-sep').hidden = true;
    updateInputs();
  });
  for (const b of document.querySelectorAll('[data-export]')) b.addEventListener('click', () => exportAs(b.dataset.export));
  document.addEventListener('click', (e) => {
    if (!e.target.closest('#export-menu')) $('export-menu').open = false;
  });
  $('timeline-toggle').addEventListener('change', (e) => {
    $('timeline').hidden = !e.target.checked;
    $('transcript-body').classList.toggle('with-timeline', e.target.checked);
  });

  if (!window.isSecureContext) showError({ code: 'insecure_context' });
  updateStorage();
  // A model already on this device loads by itself: no network, no click.
  if (await refreshCachedState()) startLoad();
}

main();
