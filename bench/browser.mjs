// bench/browser.mjs — the browser figures of bench/README.md, from headless
// Chromium on this machine, printed as one JSON object:
//   - Mimi ms per frame (wasm32, SIMD128, one thread) on the real-size Mimi,
//     and the GPU Mimi on the browser's WebGPU adapter;
//   - LM ms per step on the CPU path for the full-size model, and on the
//     WebGPU path (Chromium's SwiftShader adapter here) for the tiny one;
//   - wasm linear memory after a whole Engine.create of the full-size model
//     (it only grows, so that is the load's peak);
//   - the wasm's size, raw and gzipped;
//   - a reload of the app with the tiny model cached, to the first word of a
//     file.
// Each measurement runs in a fresh worker of bench/browser/index.html.
//
//   node bench/browser.mjs --tiny DIR --full DIR --clip FILE [--lm model-q4k.gguf]
//        [--cpu-steps 10] [--gpu-steps 30] [--mimi-frames 100] [--gpu-engine]
// Models come from `stt-cli synth` (preset tiny / full, --gguf q4_k); the
// page's wasm from scripts/build-web. Needs `npm ci --prefix browser/tests`.

import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { chromium } from '../browser/tests/node_modules/playwright-core/index.mjs';
import { startServer } from '../browser/tests/serve.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');

function args() {
  const a = { lm: 'model-q4k.gguf', cpuSteps: 10, gpuSteps: 30, mimiFrames: 100, gpuEngine: false };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, '').replace(/-(\w)/g, (_, c) => c.toUpperCase());
    if (key === 'gpuEngine') a.gpuEngine = true;
    else a[key] = /^\d+$/.test(argv[i + 1]) ? Number(argv[++i]) : argv[++i];
  }
  for (const k of ['tiny', 'full', 'clip']) {
    if (!a[k]) {
      console.error('usage: node bench/browser.mjs --tiny DIR --full DIR --clip FILE [...]');
      process.exit(2);
    }
  }
  return a;
}

const log = (...m) => console.error(new Date().toISOString().slice(11, 19), ...m);

async function main() {
  const a = args();
  const clipDir = path.dirname(path.resolve(a.clip));
  const server = await startServer({
    model: a.tiny,
    mounts: { '/bench/': path.join(HERE, 'browser'), '/model-full/': path.resolve(a.full), '/clips/': clipDir },
  });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--enable-unsafe-webgpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  const version = browser.version();
  const out = { bench: 'browser', chromium: version, date: new Date().toISOString() };
  const wasm = fs.readFileSync(path.join(ROOT, 'browser/web/pkg/stt_browser_bg.wasm'));
  out.wasm = { bytes: wasm.length, gzip_bytes: zlib.gzipSync(wasm, { level: 9 }).length };
  const clip = `/clips/${encodeURIComponent(path.basename(a.clip))}`;
  const full = '/model-full/';
  const tiny = '/model/';

  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${server.url}bench/`);
  const measure = async (name, request) => {
    log(`${name}…`);
    try {
      out[name] = await page.evaluate((r) => window.measure(r), request);
    } catch (e) {
      out[name] = { error: e.message };
    }
    log(`${name}: ${JSON.stringify(out[name])}`);
  };
  await measure('mimi_cpu', { kind: 'mimi', base: tiny, clip, frames: a.mimiFrames, chunk: 1 });
  await measure('mimi_cpu_chunked', { kind: 'mimi', base: tiny, clip, frames: a.mimiFrames, chunk: 25 });
  // The GPU Mimi on this browser's adapter (SwiftShader here: slow, the
  // point is that it runs), 25 frames per call and one per call.
  const gpuFrames = Math.min(a.mimiFrames, 50);
  await measure('mimi_webgpu_chunked', { kind: 'mimi', base: tiny, clip, frames: gpuFrames, chunk: 25, backend: 'webgpu' });
  await measure('mimi_webgpu', { kind: 'mimi', base: tiny, clip, frames: Math.min(gpuFrames, 10), chunk: 1, backend: 'webgpu' });
  await measure('lm_cpu_full', { kind: 'lm', base: full, lmFile: a.lm, backend: 'cpu', warmup: 2, steps: a.cpuSteps });
  await measure('lm_webgpu_tiny', { kind: 'lm', base: tiny, lmFile: a.lm, backend: 'webgpu', warmup: 5, steps: a.gpuSteps });
  await measure('engine_cpu_full', { kind: 'engine', base: full, lmFile: a.lm, backend: 'cpu' });
  // The full model on WebGPU: its load's memory and one step (software
  // WebGPU takes many seconds a step; --gpu-engine adds the whole engine
  // with its ~30 warm-up steps).
  await measure('lm_webgpu_full', { kind: 'lm', base: full, lmFile: a.lm, backend: 'webgpu', warmup: 0, steps: 3 });
  if (a.gpuEngine) await measure('engine_webgpu_full', { kind: 'engine', base: full, lmFile: a.lm, backend: 'webgpu' });
  await context.close();

  // The app itself: first visit stores the tiny model, the reload is timed.
  const app = await browser.newContext();
  const p = await app.newPage();
  await p.goto(`${server.url}?backend=cpu`);
  await p.click('#load-btn');
  const ready = () => p.waitForFunction(() => document.getElementById('model-state').dataset.state === 'ready', null, { timeout: 600_000 });
  await ready();
  log('first visit ready; reloading');
  const t0 = Date.now();
  await p.reload();
  await ready();
  const t1 = Date.now();
  await p.setInputFiles('#file-input', a.clip);
  await p.waitForFunction(() => document.querySelectorAll('#transcript .w').length > 0, null, { timeout: 600_000 });
  const t2 = Date.now();
  out.app_cached_tiny_cpu = { reload_to_ready_ms: t1 - t0, file_to_first_word_ms: t2 - t1, reload_to_first_word_ms: t2 - t0 };
  await app.close();

  await browser.close();
  await server.close();
  console.log(JSON.stringify(out, null, 2));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
