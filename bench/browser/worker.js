// One measurement per worker (see index.html). The model comes through the
// app's own store (model-store.js: Cache API, encoder-half Mimi), the
// timing from the wasm entry points in browser/src/bench.rs.
//
// Requests:
//   {kind: 'mimi', base, clip: URL, frames, chunk} → Mimi ms per frame (CPU),
//      `chunk` frames per call
//   {kind: 'lm', base, lmFile, backend, warmup, steps} → LM ms per step
//   {kind: 'engine', base, lmFile, backend}      → wasm memory after a full
//      Engine.create (download, parse, upload, warm-up): the load's peak
import init, { benchLm, benchMimi, memoryBytes, Engine } from '/pkg/stt_browser.js';
import { loadModelFiles, SHARD_BYTES } from '/model-store.js';

function shardsOf(buffers) {
  const out = [];
  for (const b of buffers) {
    for (let at = 0; at < b.byteLength; at += SHARD_BYTES) out.push(b.subarray(at, Math.min(b.byteLength, at + SHARD_BYTES)));
  }
  return out;
}

async function files(base, lmFile) {
  const f = await loadModelFiles({ baseUrl: base, lmFile: lmFile || 'model-q4k.gguf' });
  return {
    config: f.config,
    lm_name: f.lm_name,
    lm: shardsOf(f.lm),
    mimi_name: f.mimi_name,
    mimi: shardsOf(f.mimi),
    tokenizer_name: f.tokenizer_name,
    tokenizer: f.tokenizer,
  };
}

async function measure(r) {
  await init();
  const started = performance.now();
  const model = await files(r.base, r.lmFile);
  const download_ms = performance.now() - started;
  switch (r.kind) {
    case 'mimi': {
      const clip = new Uint8Array(await (await fetch(r.clip)).arrayBuffer());
      return { ...(await benchMimi(model, clip, r.frames, r.chunk || 1, r.backend || 'cpu')), download_ms };
    }
    case 'lm':
      return { ...(await benchLm(model, r.backend, r.warmup, r.steps)), download_ms };
    case 'engine': {
      const before = memoryBytes();
      const t0 = performance.now();
      const engine = await Engine.create({ ...model, backend: r.backend }, () => {});
      const create_ms = performance.now() - t0;
      const after = memoryBytes();
      engine.free();
      return { backend: r.backend, lm_file: model.lm_name, memory_bytes_before: before, memory_bytes_after_load: after, create_ms, download_ms };
    }
    default:
      throw new Error(`unknown measurement ${r.kind}`);
  }
}

self.onmessage = async ({ data }) => {
  try {
    self.postMessage(await measure(data));
  } catch (err) {
    self.postMessage({ error: String(err?.message ?? err) });
  }
};
