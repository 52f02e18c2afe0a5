// serve.mjs — a tiny, controllable static server for the browser tests.
// The product server is `stt-cli serve`; this one exists so tests can turn
// server behaviours on and off (Range support, 404s) and read a request log.
//
//   node browser/tests/serve.mjs [--root browser/web] [--port 8080] [--fake]
//        [--model DIR] [--no-range] [--404 /model/x] [--throttle BYTES_PER_S] [--quiet]
//
// --fake mounts browser/tests/fake-pkg/ at /pkg/ (the fake engine);
// --model mounts DIR at /model/ (what `stt-cli serve --model DIR` does).
// Every response carries COOP same-origin + COEP require-corp (cross-origin
// isolation) and index.html's Content-Security-Policy, as `stt-cli serve` does.

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Transform } from 'node:stream';
import { spawn } from 'node:child_process';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** index.html's Content-Security-Policy, sent as a header as `stt-cli serve`
 * does (the header also covers the worker; `frame-ancestors` only works there). */
const CSP = (() => {
  const html = fs.readFileSync(path.join(HERE, '../web/index.html'), 'utf8');
  const m = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(html);
  if (!m) throw new Error('index.html has no Content-Security-Policy meta tag');
  return `${m[1]}; frame-ancestors 'none'`;
})();

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.wav': 'audio/wav',
  '.mp3': 'audio/mpeg',
  '.txt': 'text/plain; charset=utf-8',
  '.model': 'application/octet-stream',
  '.gguf': 'application/octet-stream',
  '.safetensors': 'application/octet-stream',
};

/** Parses a single-range `Range` header against a file size; null = ignore,
 * 'invalid' = 416. Multi-range requests are answered with the whole file. */
function parseRange(header, size) {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header || '');
  if (!m || (m[1] === '' && m[2] === '')) return null;
  let start;
  let end;
  if (m[1] === '') {
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) return 'invalid';
  return { start, end };
}

/** Serves the page with `dir` at /model/: through `stt-cli serve` (the
 * product's server) when STT_CLI names the binary, else through this test
 * server. Resolves to {url, close}. */
export async function startModelServer(dir) {
  const stt = process.env.STT_CLI;
  if (!stt) return startServer({ model: path.resolve(dir), quiet: true });
  const child = spawn(stt, ['serve', '--model', path.resolve(dir), '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /serving (\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`stt-cli serve exited with ${code}`)));
  });
  return { url, close: async () => { child.kill(); } };
}

/**
 * Starts a server. Options can be changed while it runs with setOptions().
 * @param {{root?: string, fake?: boolean, model?: string|null, range?: boolean,
 *          notFound?: string[], port?: number, host?: string, quiet?: boolean,
 *          mounts?: Record<string,string>}} opts
 * @returns {Promise<{url: string, log: object[], setOptions: (o: object) => void,
 *                    clearLog: () => void, close: () => Promise<void>}>}
 */
export async function startServer(opts = {}) {
  const o = {
    root: path.resolve(HERE, '../web'),
    fake: false,
    model: null,
    range: true,
    notFound: [],
    port: 0,
    host: '127.0.0.1',
    quiet: true,
    mounts: {},
    throttleBps: 0, // >0: slow file bodies down (to watch progress bars)
    ...opts,
  };
  const log = [];

  const mountsOf = () => {
    const m = { ...o.mounts };
    if (o.fake) m['/pkg/'] = path.join(HERE, 'fake-pkg');
    if (o.model) m['/model/'] = path.resolve(o.model);
    return Object.entries(m).sort((a, b) => b[0].length - a[0].length);
  };

  const resolvePath = (urlPath) => {
    for (const [prefix, dir] of mountsOf()) {
      if (urlPath.startsWith(prefix)) return safeJoin(dir, urlPath.slice(prefix.length));
    }
    return safeJoin(o.root, urlPath.slice(1));
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    let urlPath;
    try {
      urlPath = decodeURIComponent(url.pathname);
    } catch {
      urlPath = url.pathname;
    }
    if (urlPath.endsWith('/')) urlPath += 'index.html';
    const entry = { method: req.method, path: urlPath, range: req.headers.range || null, status: 0, bytes: 0 };
    log.push(entry);
    const finish = (status, headers, body) => {
      entry.status = status;
      res.writeHead(status, {
        'Cross-Origin-Opener-Policy': 'same-origin',
        'Cross-Origin-Embedder-Policy': 'require-corp',
        'Cross-Origin-Resource-Policy': 'same-origin',
        'Cache-Control': 'no-cache',
        'Content-Security-Policy': CSP,
        ...headers,
      });
      if (!o.quiet) console.error(`${status} ${req.method} ${urlPath}${entry.range ? ` [${entry.range}]` : ''}`);
      if (body === undefined || req.method === 'HEAD') return res.end();
      if (typeof body === 'string' || Buffer.isBuffer(body)) {
        entry.bytes = Buffer.byteLength(body);
        return res.end(body);
      }
      body.on('data', (c) => (entry.bytes += c.length));
      (o.throttleBps > 0 ? body.pipe(throttle(o.throttleBps)) : body).pipe(res);
    };

    if (req.method !== 'GET' && req.method !== 'HEAD') return finish(405, { Allow: 'GET, HEAD' }, 'method not allowed\n');
    if (o.notFound.includes(urlPath)) return finish(404, { 'Content-Type': 'text/plain' }, 'not found (test)\n');
    const file = resolvePath(urlPath);
    let stat;
    try {
      stat = file && fs.statSync(file);
    } catch {
      stat = null;
    }
    if (!stat || !stat.isFile()) return finish(404, { 'Content-Type': 'text/plain' }, 'not found\n');

    const type = MIME[path.extname(file).toLowerCase()] || 'application/octet-stream';
    const base = { 'Content-Type': type };
    if (o.range) base['Accept-Ranges'] = 'bytes';
    const range = o.range ? parseRange(req.headers.range, stat.size) : null;
    if (range === 'invalid') return finish(416, { ...base, 'Content-Range': `bytes */${stat.size}` }, '');
    if (range) {
      return finish(
        206,
        { ...base, 'Content-Length': range.end - range.start + 1, 'Content-Range': `bytes ${range.start}-${range.end}/${stat.size}` },
        fs.createReadStream(file, { start: range.start, end: range.end }),
      );
    }
    return finish(200, { ...base, 'Content-Length': stat.size }, fs.createReadStream(file));
  });

  await new Promise((resolve) => server.listen(o.port, o.host, resolve));
  const { port } = server.address();
  return {
    url: `http://${o.host === '0.0.0.0' ? '127.0.0.1' : o.host}:${port}/`,
    log,
    setOptions: (patch) => Object.assign(o, patch),
    clearLog: () => log.splice(0),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

/** A Transform that passes ~bps bytes per second, in 16 KiB slices. */
function throttle(bps) {
  return new Transform({
    transform(chunk, _enc, done) {
      const slices = [];
      for (let at = 0; at < chunk.length; at += 16384) slices.push(chunk.subarray(at, at + 16384));
      const next = () => {
        const s = slices.shift();
        if (!s) return done();
        this.push(s);
        setTimeout(next, (1000 * s.length) / bps);
      };
      next();
    },
  });
}

/** Joins without escaping `dir` (no ../ tricks). */
function safeJoin(dir, rel) {
  const full = path.resolve(dir, '.' + path.sep + rel);
  return full === dir || full.startsWith(dir + path.sep) ? full : null;
}

// ------------------------------------------------------------ CLI

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const opts = { quiet: false, notFound: [], port: 8080 };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--root') opts.root = path.resolve(args[++i]);
    else if (a === '--port') opts.port = Number(args[++i]);
    else if (a === '--host') opts.host = args[++i];
    else if (a === '--fake') opts.fake = true;
    else if (a === '--model') opts.model = args[++i];
    else if (a === '--no-range') opts.range = false;
    else if (a === '--404') opts.notFound.push(args[++i]);
    else if (a === '--quiet') opts.quiet = true;
    else if (a === '--throttle') opts.throttleBps = Number(args[++i]);
    else {
      console.error(`unknown argument ${a}\nusage: node serve.mjs [--root DIR] [--port N] [--host H] [--fake] [--model DIR] [--no-range] [--404 PATH]... [--throttle BYTES_PER_S] [--quiet]`);
      process.exit(2);
    }
  }
  const s = await startServer(opts);
  console.error(`serving ${opts.root || 'browser/web'} at ${s.url}${opts.fake ? ' (fake engine at /pkg/)' : ''}${opts.model ? ` (model at /model/)` : ''}`);
}
