// soak.mjs — the browser app recording Chromium's fake microphone (a WAV,
// looped by Chromium) for MINUTES with the REAL engine, as one live stream:
// words must keep coming every minute (past every context wrap of the
// model's KV cache) and memory must stay flat. Prints one JSON object:
// per minute the words shown so far and the resident memory of every
// Chromium process (the page, its worker, the GPU process), in MB.
//
//   [STT_CLI=path/to/stt-cli] node browser/tests/soak.mjs MODEL_DIR CLIP.wav [MINUTES] [cpu|webgpu]
//
// `just soak-browser` runs 10 minutes; CI runs 1 on the tiny model (words
// and errors only). Fails (exit 1) when a minute after the first brings no
// word, the page reports an error, or — from 4 minutes on — memory grows
// faster than SLOPE_LIMIT_MB a minute from minute 3 on (a least-squares
// slope: single readings swing by ~±40 MB with V8's heap; the first two
// minutes are warm-up, JIT and heap sizing). The limit sits below what
// keeping the stream's audio would add: 5.8 MB a minute at 24 kHz after
// resampling, 11.5 at a 48 kHz microphone. Measured (10 minutes, tiny
// model, CPU path, 2-core machine): 2.7 MB a minute, 1942 → 2125 MB.

import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startModelServer } from './serve.mjs';

const [modelDir, clip, minutesArg = '10', backend = 'cpu'] = process.argv.slice(2);
if (!modelDir || !clip || !['cpu', 'webgpu'].includes(backend)) {
  console.error('usage: node soak.mjs MODEL_DIR CLIP.wav [MINUTES] [cpu|webgpu]');
  process.exit(2);
}
const MINUTES = Number(minutesArg);
const SLOPE_LIMIT_MB = 5.5;

/** Least-squares slope (MB per minute) of `points` [{minute, rss_mb}]. */
function slope(points) {
  const n = points.length;
  const mx = points.reduce((s, p) => s + p.minute, 0) / n;
  const my = points.reduce((s, p) => s + p.rss_mb, 0) / n;
  const sxx = points.reduce((s, p) => s + (p.minute - mx) ** 2, 0);
  return points.reduce((s, p) => s + (p.minute - mx) * (p.rss_mb - my), 0) / sxx;
}

/** Resident MB of the Chromium processes below `pid` (Linux /proc): the
 * browser, the page's renderer with its worker, the GPU process. */
function chromiumRssMb(pid) {
  const children = new Map();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(entry));
    } catch {
      /* the process ended meanwhile */
    }
  }
  let kb = 0;
  const todo = [pid];
  while (todo.length) {
    const p = todo.pop();
    try {
      const status = fs.readFileSync(`/proc/${p}/status`, 'utf8');
      const m = /VmRSS:\s+(\d+)/.exec(status);
      if (m && /^Name:\s+(chrom|headless)/m.test(status)) kb += Number(m[1]);
    } catch {
      /* gone */
    }
    todo.push(...(children.get(p) || []));
  }
  return Math.round(kb / 1024);
}

async function main() {
  const server = await startModelServer(modelDir);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--enable-unsafe-webgpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
      `--use-file-for-fake-audio-capture=${path.resolve(clip)}`],
  });
  const report = { minutes: MINUTES, backend, per_minute: [], errors: [] };
  let failed = false;
  try {
    const page = await browser.newPage();
    page.on('pageerror', (e) => report.errors.push(e.message));
    await page.goto(`${server.url}?backend=${backend}`);
    await page.click('#load-btn');
    await page.waitForFunction(() => document.getElementById('model-state').dataset.state === 'ready', null, { timeout: 300_000 });
    await page.evaluate(() => {
      window.soakErrors = [];
      window.sttClient.addEventListener('error', (e) => window.soakErrors.push(`${e.detail.code}: ${e.detail.message}`));
    });
    await page.click('#record-btn');
    const started = Date.now();
    let previous = 0;
    for (let minute = 1; minute <= MINUTES; minute++) {
      await page.waitForTimeout(Math.max(0, started + minute * 60_000 - Date.now()));
      const words = await page.evaluate(() => document.querySelectorAll('#transcript .w').length);
      const recording = await page.evaluate(() => document.querySelector('#record-btn').getAttribute('aria-pressed') === 'true');
      report.per_minute.push({ minute, words, new_words: words - previous, rss_mb: chromiumRssMb(process.pid), recording });
      console.error(`minute ${minute}: ${words} words (+${words - previous}), ${report.per_minute.at(-1).rss_mb} MB`);
      previous = words;
    }
    await page.click('#record-btn'); // Stop: the last words
    await page.waitForFunction(() => {
      const b = document.querySelector('#record-btn');
      return b.getAttribute('aria-pressed') === 'false' && !b.hasAttribute('data-busy');
    }, null, { timeout: 120_000 });
    report.words_after_stop = await page.evaluate(() => document.querySelectorAll('#transcript .w').length);
    report.errors.push(...(await page.evaluate(() => window.soakErrors)));
    const first = report.per_minute[0];
    const last = report.per_minute.at(-1);
    report.rss_growth_mb = last.rss_mb - first.rss_mb;
    const settled = report.per_minute.filter((m) => m.minute >= 3);
    report.rss_slope_mb_per_minute_from_minute_3 = settled.length >= 2 ? slope(settled) : null;
    const silentMinutes = report.per_minute.filter((m) => m.minute > 1 && m.new_words === 0).map((m) => m.minute);
    const stopped = report.per_minute.filter((m) => !m.recording).map((m) => m.minute);
    report.ok = silentMinutes.length === 0 && stopped.length === 0 && report.errors.length === 0 &&
      first.words > 0 && first.rss_mb > 0 &&
      (MINUTES < 4 || report.rss_slope_mb_per_minute_from_minute_3 <= SLOPE_LIMIT_MB);
    if (!report.ok) {
      failed = true;
      console.error(`soak failed: minutes without words ${JSON.stringify(silentMinutes)}, not recording ${JSON.stringify(stopped)}, ` +
        `errors ${JSON.stringify(report.errors)}, RSS slope ${report.rss_slope_mb_per_minute_from_minute_3} MB/min (limit ${SLOPE_LIMIT_MB})`);
    }
  } catch (e) {
    failed = true;
    report.errors.push(String(e.message));
    console.error(`soak failed: ${e.message}`);
  } finally {
    await browser.close();
    await server.close();
  }
  console.log(JSON.stringify(report, null, 2));
  process.exit(failed ? 1 : 0);
}

main();
