// worker.js — the module Web Worker that owns the model. The page (through
// stt-client.js) sends protocol requests; this worker downloads the model
// (model-store.js), creates the wasm Engine (pkg/stt_browser.js) and forwards
// every other request to it. All inference happens here, never on the UI thread.
//
// Invariants:
// - Requests run one at a time, in order, through one promise chain, so
//   `stop` after a burst of `audio` flushes only once all audio was consumed.
// - Every request is answered with {type:'done', request, ok} after its last
//   output; failures first post {type:'error', code, message}.
// - The worker survives every error: nothing escapes the chain.
// - A wasm trap (a bug: a Rust panic, or memory corrupted) leaves the engine
//   unusable: every request then fails with `engine_crashed`, and the client
//   (stt-client.js) replaces this worker with a new one.
// - A GPU lost mid-stream (`device_lost`) does not end the stream: the model
//   files are read again (from the device's cache) and the engine finishes
//   the request on the CPU, keeping the words already sent.

import { loadModelFiles, SHARD_BYTES } from './model-store.js';

/** Engine error codes (wasm side) after which 'auto' retries on the CPU. */
const GPU_FAILURE = /^(no_adapter|no_webgpu|device_lost|gpu_.*)$/;

let wasm = null; // the imported pkg module, once initialised
let engine = null;
let lastStatus = null; // last status state the engine emitted (to know if it said 'ready')
let lastLoad = null; // the load request, to read the same files again for the CPU
let crashed = null; // the trap that broke the engine, if one did

const post = (msg, transfer) => self.postMessage(msg, transfer || []);

/** Status updates from the worker itself; the engine posts its own too. */
function status(state, extra = {}) {
  post({ type: 'status', state, ...extra });
}

/** Maps any thrown value to a protocol error {code, message}. The engine's
 * errors start with "[code] ..."; the store's carry `.code`. */
export function toProtocolError(err) {
  const text = String(err?.message ?? err ?? 'unknown error');
  const m = /^\[([a-z_0-9]+)\]\s*([\s\S]*)$/.exec(text);
  if (m) return { type: 'error', code: m[1], message: m[2] || text };
  if (err?.code && typeof err.code === 'string') return { type: 'error', code: err.code, message: text };
  // Allocation failures surface as RangeError ("Array buffer allocation
  // failed") or a wasm RuntimeError ("memory access out of bounds" / "unreachable"
  // right after a failed grow); say "out of memory" rather than "internal".
  if (err instanceof RangeError || /out of memory|allocation failed|could not allocate|memory\.grow/i.test(text)) {
    return { type: 'error', code: 'out_of_memory', message: text };
  }
  return { type: 'error', code: 'internal', message: text };
}

/** The engine wants each file as ≤ 1 GiB Uint8Array shards. The store
 * already reads in shards; re-cut anything larger, as views (no copy). */
function shardsOf(buffers) {
  const out = [];
  for (const b of buffers) {
    for (let at = 0; at < b.byteLength; at += SHARD_BYTES) {
      out.push(b.subarray(at, Math.min(b.byteLength, at + SHARD_BYTES)));
    }
  }
  return out;
}

async function importEngine() {
  if (wasm) return wasm;
  let mod;
  try {
    mod = await import('./pkg/stt_browser.js');
  } catch (err) {
    throw Object.assign(new Error(`the speech engine (pkg/stt_browser.js) could not be loaded: ${err.message}`), {
      code: 'internal',
    });
  }
  await mod.default(); // fetches and instantiates pkg/stt_browser_bg.wasm
  wasm = mod;
  return wasm;
}

/** Engine → page messages pass straight through; we only watch status. */
function onEngineMessage(msg) {
  if (msg && msg.type === 'status') lastStatus = msg.state;
  post(msg);
}

/** Where the model files are and which LM, as `load` asked. */
function fileOptions(msg) {
  return {
    baseUrl: msg.base_url || null,
    lmFile: msg.lm_file || 'model-q4k.gguf',
    onProgress: (p) => post({ type: 'progress', phase: 'download', file: p.file, loaded: p.loaded, total: p.total, cached: p.cached }),
  };
}

async function handleLoad(msg) {
  lastLoad = msg;
  if (engine) {
    // A new load replaces the current model: free GPU/wasm memory first.
    engine.free();
    engine = null;
  }
  if (!self.isSecureContext) {
    // Not fatal for loading (no Cache API, no WebGPU), but worth saying.
    status('downloading', {
      code: 'insecure_context',
      notice: 'This page is not a secure context (https or localhost): the model cannot be kept on this device and the GPU is unavailable.',
    });
  }
  const mod = await importEngine();
  status('downloading');
  const files = await loadModelFiles({
    ...fileOptions(msg),
    onQuota: (estimate) =>
      status('downloading', {
        code: 'quota_exceeded',
        notice:
          'There is not enough storage to keep the model on this device. It is kept in memory for this visit only and will be downloaded again next time.',
        storage: estimate,
      }),
  });
  status('loading', { memory_only: files.memoryOnly, lm_file: files.lm_name });
  const opts = {
    config: files.config,
    lm_name: files.lm_name,
    lm: shardsOf(files.lm),
    mimi_name: files.mimi_name,
    mimi: shardsOf(files.mimi),
    tokenizer_name: files.tokenizer_name,
    tokenizer: files.tokenizer,
    backend: msg.backend || 'auto',
    // Text sampling: 0 (the default) is greedy, exactly moshi's choice.
    temperature: msg.temperature ?? 0,
    seed: msg.seed ?? 0,
  };
  lastStatus = null;
  try {
    engine = await mod.Engine.create(opts, onEngineMessage);
  } catch (err) {
    const e = toProtocolError(err);
    if (opts.backend !== 'auto' || !GPU_FAILURE.test(e.code)) throw err;
    // WebGPU is missing or broken: the CPU path runs the same model.
    status('loading', {
      code: e.code,
      notice: `WebGPU is not available here (${e.message}). Using the CPU instead — it may be slower than real time.`,
    });
    lastStatus = null;
    engine = await mod.Engine.create({ ...opts, backend: 'cpu' }, onEngineMessage);
  }
  // Engines are expected to say 'ready' (with backend/adapter) after warm-up;
  // make sure the page is never left waiting if one does not.
  if (lastStatus !== 'ready') status('ready');
}

/** Runs a stream request; if the GPU is lost on the way, the stream goes on
 * on the CPU (the engine keeps the words so far and what was left to do). */
async function streamRequest(msg) {
  try {
    return await engine.handle(msg);
  } catch (err) {
    const e = toProtocolError(err);
    if (e.code !== 'device_lost' || !lastLoad) throw err;
    post({
      type: 'status',
      code: 'device_lost',
      notice: 'Continuing on the CPU: the words so far are kept, and it may be slower than real time.',
      message: e.message,
    });
    const files = await loadModelFiles(fileOptions(lastLoad));
    const finished = await engine.continueOnCpu({
      lm_name: files.lm_name,
      lm: shardsOf(files.lm),
      mimi_name: files.mimi_name,
      mimi: shardsOf(files.mimi),
    });
    // Nothing had run yet (a new stream was being set up): run it now.
    return finished ? undefined : engine.handle(msg);
  }
}

async function handle(msg) {
  switch (msg?.type) {
    case 'load':
      return handleLoad(msg);
    case 'audio':
    case 'file':
    case 'stop':
    case 'reset':
    case 'restore':
    case 'export': {
      if (crashed) throw crashed;
      if (!engine) {
        if (msg.type === 'reset') return; // nothing to forget
        throw Object.assign(new Error('the model is not loaded yet'), { code: 'not_loaded' });
      }
      const result = msg.type === 'export' ? await engine.handle(msg) : await streamRequest(msg);
      if (msg.type === 'export') post({ type: 'export', format: msg.format, text: String(result ?? '') });
      return;
    }
    default:
      throw Object.assign(new Error(`unknown request ${JSON.stringify(msg?.type)}`), { code: 'internal' });
  }
}

let chain = Promise.resolve();
self.onmessage = (event) => {
  const msg = event.data;
  chain = chain.then(async () => {
    let ok = true;
    try {
      await handle(msg);
    } catch (err) {
      ok = false;
      if (err instanceof WebAssembly.RuntimeError && !crashed) {
        // The instance is broken (its memory may be too): nothing more runs here.
        crashed = Object.assign(new Error(`the speech engine stopped unexpectedly (${err.message})`), { code: 'engine_crashed' });
        err = crashed;
      }
      const e = toProtocolError(err);
      post(e);
      if (msg?.type === 'load') status('error', { code: e.code });
    }
    post({ type: 'done', request: msg?.type ?? 'unknown', ok });
  });
};

// Anything that escapes (e.g. an engine callback throwing) is reported, not fatal.
self.addEventListener('unhandledrejection', (event) => {
  event.preventDefault();
  post(toProtocolError(event.reason));
});
