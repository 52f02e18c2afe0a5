// real.mjs — the browser app with the REAL engine (browser/web/pkg, built by
// scripts/build-web) and a synthetic model, in headless Chromium:
//   - each clip uploaded on the CPU path exports JSON byte-identical to
//     `stt-cli transcribe --format json` on the same model and file;
//   - the WebGPU path (Chromium's SwiftShader adapter) gives the same words
//     as the CPU path, on the float (safetensors) model: on GGUF weights the
//     CPU path is candle's quantized matmul, which also quantizes the
//     activations (ARCHITECTURE.md), so the two do different arithmetic;
//   - the page and its worker make no request at all while a file is
//     transcribed (CPU and WebGPU) or the microphone recorded and transcribed;
//   - the microphone (Chromium's fake capture playing SHORT_CLIP): words
//     appear while it records, Stop flushes the rest and leaves no partial;
//   - the GPU lost mid-file (the worker's WebGPU device destroyed, as a
//     driver reset would): the page says so, the file finishes on the CPU,
//     every word shown before the loss is still there, unchanged; the same
//     while recording the microphone (words keep coming on the CPU);
//   - the worker replaced (`sttClient.restart()`, what the client does after
//     an engine crash): the model loads again from the cache and the JSON
//     export is unchanged, byte for byte;
//   - a screenshot mid-transcription.
//
//   [STT_CLI=path/to/stt-cli] node browser/tests/real.mjs MODEL_DIR CLI_JSON_DIR FLOAT_MODEL_DIR SHORT_CLIP CLIP...
// CLI_JSON_DIR holds `<clip name>.json` from stt-cli (run from the clip's
// folder, so its `source` is the bare file name, as the page's is).
// FLOAT_MODEL_DIR: the same model with only model.safetensors as its LM (the
// page falls back to it); SHORT_CLIP: a few seconds for the slow software
// WebGPU adapter. With STT_CLI, the page and models are served by
// `stt-cli serve` (the product's server), else by the test server.

import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startModelServer } from './serve.mjs';

const [modelDir, cliDir, floatModelDir, shortClip, ...clips] = process.argv.slice(2);
if (!modelDir || !cliDir || !floatModelDir || !shortClip || clips.length === 0) {
  console.error('usage: node real.mjs MODEL_DIR CLI_JSON_DIR FLOAT_MODEL_DIR SHORT_CLIP CLIP...');
  process.exit(2);
}
const OUT_DIR = process.env.OUT_DIR || '/tmp/stt-web-shots';
const LOAD_MS = 300_000;
const FILE_MS = 600_000;

let failed = 0;
function verdict(ok, name, detail = '') {
  console.log(`${ok ? 'PASS' : 'FAIL'}  ${name}${detail ? `  (${detail})` : ''}`);
  if (!ok) failed += 1;
}

/** Opens the page on `backend`, loads the model, transcribes `clips`; returns
 * {adapter, exports: {clip: json text}, requestsDuringFiles}. */
async function run(browser, server, backend, clipsToRun, shot) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // Every request of the page and its worker, to any host.
  let requests = 0;
  context.on('request', () => { requests += 1; });
  await page.goto(`${server.url}?backend=${backend}`);
  await page.click('#load-btn');
  await page.waitForFunction(() => document.getElementById('model-state').dataset.state === 'ready', null, { timeout: LOAD_MS });
  const badge = await page.evaluate(() => document.body.innerText.match(/(WebGPU|CPU)[^\n]{0,60}/)?.[0] ?? '');
  const exports = {};
  let requestsDuringFiles = 0;
  for (const clip of clipsToRun) {
    const before = requests;
    await page.setInputFiles('#file-input', clip);
    if (shot) {
      await page.waitForFunction(() => document.querySelectorAll('#transcript .w').length >= 3, null, { timeout: FILE_MS });
      await page.screenshot({ path: path.join(OUT_DIR, `real-${backend}-mid.png`), fullPage: true });
      shot = false;
    }
    await page.waitForFunction(() => document.getElementById('file-job-pct').textContent === 'Done', null, { timeout: FILE_MS });
    requestsDuringFiles += requests - before;
    exports[path.basename(clip)] = await page.evaluate(() => window.sttClient.export('json'));
  }
  // A new worker, the model loaded again, the transcript handed back.
  let restartedExport = null;
  if (backend === 'cpu') {
    await page.evaluate(() => window.sttClient.restart());
    await page.waitForFunction(() => document.getElementById('model-state').dataset.state === 'ready', null, { timeout: LOAD_MS });
    restartedExport = await page.evaluate(() => window.sttClient.export('json'));
  }
  await page.screenshot({ path: path.join(OUT_DIR, `real-${backend}-done.png`), fullPage: true });
  await context.close();
  if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);
  const last = exports[path.basename(clipsToRun[clipsToRun.length - 1])];
  return { badge, exports, requestsDuringFiles, restartKept: restartedExport === null || restartedExport === last };
}

const words = (json) => JSON.parse(json).words;

/** Transcribes `clip` on WebGPU (a file, or with `live` the fake microphone
 * `browser` plays) and destroys the worker's GPU device once the first word
 * is shown; returns what the page showed before and after. */
async function deviceLoss(browser, server, clip, live = false) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const workerReady = page.waitForEvent('worker');
  await page.goto(`${server.url}?backend=webgpu`);
  const worker = await workerReady;
  // Keep every device the worker makes, to destroy it from outside.
  await worker.evaluate(() => {
    const request = GPUAdapter.prototype.requestDevice;
    GPUAdapter.prototype.requestDevice = async function (...args) {
      const device = await request.apply(this, args);
      (self.sttTestDevices ||= []).push(device);
      return device;
    };
  });
  await page.click('#load-btn');
  await page.waitForFunction(() => document.getElementById('model-state').dataset.state === 'ready', null, { timeout: LOAD_MS });
  if (live) await page.click('#record-btn');
  else await page.setInputFiles('#file-input', clip);
  await page.waitForFunction(() => document.querySelectorAll('#transcript .w').length >= 1, null, { timeout: FILE_MS });
  const shown = () => page.evaluate(() => [...document.querySelectorAll('#transcript .w')].map((w) => w.textContent));
  const destroyed = await worker.evaluate(() => {
    for (const d of self.sttTestDevices || []) d.destroy();
    return (self.sttTestDevices || []).length;
  });
  const before = await shown();
  let doneBefore;
  if (live) {
    doneBefore = false;
    // Words on the CPU while still recording, then Stop flushes the rest.
    await page.waitForFunction((n) => document.querySelectorAll('#transcript .w').length > n, before.length, { timeout: FILE_MS });
    await page.click('#record-btn');
    await page.waitForFunction(() => {
      const b = document.querySelector('#record-btn');
      return b.getAttribute('aria-pressed') === 'false' && !b.hasAttribute('data-busy');
    }, null, { timeout: FILE_MS });
  } else {
    doneBefore = await page.evaluate(() => document.getElementById('file-job-pct').textContent === 'Done');
    await page.waitForFunction(() => document.getElementById('file-job-pct').textContent === 'Done', null, { timeout: FILE_MS });
  }
  const after = await shown();
  const banner = await page.evaluate(() => document.body.innerText.includes('The GPU stopped responding'));
  const badge = await page.evaluate(() => document.getElementById('backend-text').textContent);
  const errorBanners = await page.locator('.banner-error').count();
  await page.screenshot({ path: path.join(OUT_DIR, `real-device-lost${live ? '-mic' : ''}.png`), fullPage: true });
  const exported = words(await page.evaluate(() => window.sttClient.export('json')));
  await context.close();
  if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);
  return { destroyed, before, doneBefore, after, banner, badge, errorBanners, exported };
}

/** Records from the fake microphone (the clip, looped) on the CPU path. */
async function microphone(server, clip) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--no-first-run', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
      `--use-file-for-fake-audio-capture=${path.resolve(clip)}`],
  });
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${server.url}?backend=cpu`);
    await page.click('#load-btn');
    await page.waitForFunction(() => document.getElementById('model-state').dataset.state === 'ready', null, { timeout: LOAD_MS });
    // Every request of the page and its worker, to any host.
    let requests = 0;
    page.context().on('request', () => { requests += 1; });
    await page.click('#record-btn');
    await page.waitForFunction(() => document.querySelectorAll('#transcript .w').length >= 1, null, { timeout: 60_000 }).catch(async (e) => {
      await page.screenshot({ path: path.join(OUT_DIR, 'real-mic-timeout.png'), fullPage: true });
      const state = await page.evaluate(() => `${document.getElementById('status-text').textContent}; ${document.getElementById('transcript').textContent.slice(0, 200)}`);
      throw new Error(`no word while recording (${state}): ${e.message}`);
    });
    const during = await page.evaluate(() => document.querySelectorAll('#transcript .w').length);
    await page.screenshot({ path: path.join(OUT_DIR, 'real-mic-live.png'), fullPage: true });
    await page.click('#record-btn'); // Stop
    await page.waitForFunction(() => {
      const b = document.querySelector('#record-btn');
      return b.getAttribute('aria-pressed') === 'false' && !b.hasAttribute('data-busy');
    }, null, { timeout: 60_000 });
    await page.waitForFunction(() => /Ready/i.test(document.getElementById('status-text')?.textContent ?? 'Ready'), null, { timeout: 60_000 });
    const after = await page.evaluate(() => document.querySelectorAll('#transcript .w').length);
    const partials = await page.locator('#transcript .partial').count();
    if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);
    return { during, after, partials, requests };
  } finally {
    await browser.close();
  }
}

async function main() {
  fs.mkdirSync(OUT_DIR, { recursive: true });
  let server = await startModelServer(modelDir);
  console.log(`server: ${process.env.STT_CLI ? 'stt-cli serve' : 'test server'} at ${server.url}`);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--enable-unsafe-webgpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const t0 = Date.now();
    const cpu = await run(browser, server, 'cpu', clips, true);
    verdict(/CPU/.test(cpu.badge), 'the CPU path says so', cpu.badge);
    for (const clip of clips) {
      const name = path.basename(clip);
      const want = fs.readFileSync(path.join(cliDir, `${name}.json`), 'utf8');
      const got = cpu.exports[name];
      verdict(got === want, `${name}: the page's JSON export equals stt-cli's, byte for byte`,
        `${words(got).length} words vs ${words(want).length}`);
    }
    verdict(cpu.restartKept, 'a restarted worker loads the model again and exports the same transcript, byte for byte');
    verdict(cpu.requestsDuringFiles === 0, 'no network request while transcribing', `${cpu.requestsDuringFiles} requests`);
    console.log(`cpu path: ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    const mic = await microphone(server, shortClip);
    verdict(mic.during >= 1 && mic.after >= mic.during && mic.partials === 0,
      'microphone: words while recording, the rest after Stop, no partial left',
      `${mic.during} words live, ${mic.after} after Stop, ${mic.partials} partials`);
    verdict(mic.requests === 0, 'no network request while recording and transcribing the microphone', `${mic.requests} requests`);

    // WebGPU against CPU, both in the page, on the float model.
    await server.close();
    server = await startModelServer(floatModelDir);
    const t1 = Date.now();
    const cpuFloat = await run(browser, server, 'cpu', [shortClip], false);
    const gpu = await run(browser, server, 'webgpu', [shortClip], true);
    verdict(/WebGPU/.test(gpu.badge), 'the WebGPU path says so', gpu.badge);
    verdict(gpu.requestsDuringFiles === 0, 'no network request while transcribing on WebGPU', `${gpu.requestsDuringFiles} requests`);
    const name = path.basename(shortClip);
    const [g, c] = [words(gpu.exports[name]), words(cpuFloat.exports[name])];
    verdict(g.length > 0 && JSON.stringify(g) === JSON.stringify(c),
      `${name}: WebGPU and CPU give the same words and times`, `${g.length} words vs ${c.length}`);
    console.log(`float model, cpu + webgpu paths: ${((Date.now() - t1) / 1000).toFixed(1)} s`);

    const t2 = Date.now();
    const lost = await deviceLoss(browser, server, shortClip);
    verdict(lost.destroyed >= 1 && !lost.doneBefore, 'device loss: the GPU device was destroyed mid-file',
      `${lost.destroyed} device(s), ${lost.before.length} words shown then`);
    verdict(lost.banner && /CPU/.test(lost.badge) && lost.errorBanners === 0,
      'device loss: the page says so and carries on on the CPU, with no error', `badge "${lost.badge}"`);
    const kept = lost.before.every((w, i) => lost.after[i] === w);
    verdict(kept && lost.after.length > lost.before.length && lost.exported.length === lost.after.length,
      'device loss: every word shown before it is kept, and the rest of the file follows',
      `${lost.before.length} words before, ${lost.after.length} after`);
    console.log(`device loss: ${((Date.now() - t2) / 1000).toFixed(1)} s`);

    // The same while recording: the microphone stream goes on on the CPU.
    const t3 = Date.now();
    const micBrowser = await chromium.launch({
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--enable-unsafe-webgpu', '--disable-background-networking', '--disable-component-update',
        '--disable-sync', '--no-first-run', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
        `--use-file-for-fake-audio-capture=${path.resolve(shortClip)}`],
    });
    try {
      const m = await deviceLoss(micBrowser, server, shortClip, true);
      verdict(m.destroyed >= 1 && m.banner && /CPU/.test(m.badge) && m.errorBanners === 0,
        'device loss while recording: the page says so and carries on on the CPU', `badge "${m.badge}"`);
      const keptLive = m.before.every((w, i) => m.after[i] === w);
      verdict(keptLive && m.after.length > m.before.length && m.exported.length === m.after.length,
        'device loss while recording: every word shown before it is kept, and words keep coming',
        `${m.before.length} words before, ${m.after.length} after Stop`);
    } finally {
      await micBrowser.close();
    }
    console.log(`device loss while recording: ${((Date.now() - t3) / 1000).toFixed(1)} s`);
  } catch (e) {
    verdict(false, 'the run completed', e.message);
  } finally {
    await browser.close();
    await server.close();
  }
  console.log(failed ? `${failed} real-engine check(s) failed` : 'all real-engine checks passed');
  process.exit(failed ? 1 : 0);
}

main();
