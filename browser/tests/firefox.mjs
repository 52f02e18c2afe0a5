// firefox.mjs — a smoke test of the app in headless Firefox (puppeteer-core over
// WebDriver BiDi), against the FAKE engine: load the model, transcribe a file,
// export. Skips (exit 0) when Firefox is not installed.
//
//   node browser/tests/firefox.mjs      # FIREFOX=/path/to/firefox to override

import fs from 'node:fs';
import path from 'node:path';
import puppeteer from 'puppeteer-core';
import { startServer } from './serve.mjs';
import { makeFixtures } from './fixtures.mjs';

const FIREFOX = process.env.FIREFOX || ['/usr/bin/firefox-esr', '/usr/bin/firefox'].find((p) => fs.existsSync(p));
if (!FIREFOX) {
  console.log('SKIP  firefox smoke test (no Firefox installed)');
  process.exit(0);
}

const fx = makeFixtures();
const server = await startServer({ fake: true, model: fx.model });
const browser = await puppeteer.launch({ browser: 'firefox', executablePath: FIREFOX, headless: true });
let failed = 0;
async function check(name, fn) {
  try {
    await fn();
    console.log(`PASS  ${name}`);
  } catch (err) {
    failed++;
    console.log(`FAIL  ${name}\n      ${err.message}`);
  }
}

try {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(server.url);
  await check('firefox: model loads from /model/', async () => {
    await page.click('#load-btn');
    await page.waitForFunction(() => document.getElementById('model-state').dataset.state === 'ready', { timeout: 20_000 });
  });
  await check('firefox: file upload produces words and exports', async () => {
    const input = await page.$('#file-input');
    await input.uploadFile(path.join(fx.dir, 'speech.wav'));
    await page.waitForFunction(() => document.querySelectorAll('#transcript .w').length === 20, { timeout: 20_000 });
    const srt = await page.evaluate(() => window.sttClient.export('srt'));
    if (!srt.startsWith('1\n00:00:00,000 --> ')) throw new Error(`srt: ${srt.slice(0, 40)}`);
  });
  await check('firefox: no page errors', async () => {
    if (errors.length) throw new Error(errors.join(' | '));
  });
  const out = process.env.OUT_DIR || '/tmp/stt-web-shots';
  fs.mkdirSync(out, { recursive: true });
  await page.screenshot({ path: path.join(out, '11-firefox.png'), fullPage: true });
} finally {
  await browser.close();
  await server.close();
  fs.rmSync(fx.dir, { recursive: true, force: true });
}
console.log(failed ? `\n${failed} firefox check(s) failed` : '\nfirefox checks passed');
process.exit(failed ? 1 : 0);
