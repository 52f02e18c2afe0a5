// model-store.js — where the model files come from, how they are downloaded,
// and how they are kept on the device (Cache API). Used by worker.js, and by
// the page for the cheap "is it cached?" check (no network) and by tests.
//
// Everything here works both in a Window and in a Worker: no DOM, no
// localStorage (workers have none; the page passes its settings in `load`).

/** Cache API bucket for every model file; bump the version to invalidate. */
export const CACHE_NAME = 'stt-web-model-v1';
/** Header stored with each cached file: its expected length in bytes. */
const LENGTH_HEADER = 'x-stt-length';
/** Shards handed to the engine: under wasm32 an ArrayBuffer tops out at 2 GB,
 * and wasm-bindgen copies each shard into linear memory, so keep them ≤ 1 GiB. */
export const SHARD_BYTES = 1 << 30;

/** The only origins model files may come from besides this site's own:
 * Hugging Face (its file downloads redirect to its CDN hosts, *.hf.co).
 * index.html's Content-Security-Policy and `stt-cli serve`'s header allow
 * the same and nothing else; this check gives the clear error first. */
export const MODEL_ORIGINS = ['https://huggingface.co'];

/** Throws a `model_origin` StoreError for a URL outside this site and
 * MODEL_ORIGINS, before anything is requested from it. */
export function checkModelOrigin(url) {
  const origin = new URL(url, self.location.href).origin;
  if (origin === self.location.origin || MODEL_ORIGINS.includes(origin)) return;
  throw new StoreError('model_origin',
    `models load only from this site or ${MODEL_ORIGINS.join(', ')}, not from ${origin}`);
}

/** Default source: the quantized LM repo plus Kyutai's Mimi, at the
 * revisions pinned in vendor/models.json (else their `main`). */
export const HF_QUANTIZED_REPO = 'efficient-nlp/stt-1b-en_fr-quantized';
export const HF_CANDLE_REPO = 'kyutai/stt-1b-en_fr-candle';
const hubBase = (repo, revision) => `https://huggingface.co/${repo}/resolve/${revision || 'main'}/`;
export const DEFAULT_MIMI_NAME = 'mimi-pytorch-e351c8d8@125.safetensors';
const DEFAULT_TOKENIZER_NAME = 'tokenizer_en_fr_audio_8000.json';
/** LM files tried in this order at a custom base when the chosen one is missing. */
const LM_FALLBACKS = ['model-q80.gguf', 'model-q40.gguf', 'model.safetensors'];

/** Sizes shown before the download starts (bytes, from the Hub listings). */
export const MODEL_SIZES = {
  'model-q4k.gguf': 557e6,
  'model-q80.gguf': 1.05e9,
  mimiEncoder: 224e6, // encoder half of Mimi (what we actually fetch)
  tokenizerAndConfig: 0.5e6,
};

/** Mimi tensors the speech-to-text path needs: the encoder side only. */
export function isEncoderTensor(name) {
  return (
    /^(encoder\.|encoder_transformer\.|downsample\.|quantizer\.)/.test(name) &&
    !name.includes('output_proj')
  );
}

/** An Error that carries a protocol error code (see worker.js). */
export class StoreError extends Error {
  constructor(code, message, extra = {}) {
    super(message);
    this.code = code;
    Object.assign(this, extra);
  }
}

// ---------------------------------------------------------------- pins

/** The pinned manifest (vendor/models.json, written by
 * scripts/pin-models.mjs): `revisions` {repo: commit} for the default
 * source, and `files` [{url, size, sha256, part?}] — a downloaded file at one
 * of those URLs is used and kept only if its size and SHA-256 match
 * (`part: "encoder"`: Mimi's encoder-only rebuild, what the page keeps).
 * Returns {revisions, pins: Map(cache key → pin)}; an absent manifest pins
 * nothing (the page and this file come from the same server anyway). */
export async function loadPins(url = new URL('./vendor/models.json', self.location.href).href) {
  let manifest;
  try {
    const res = await fetch(url, { cache: 'no-store' });
    if (res.status === 404) return { revisions: {}, pins: new Map() };
    if (!res.ok) throw new Error(`${res.status} ${res.statusText}`);
    manifest = await res.json();
  } catch (err) {
    throw new StoreError('download_failed', `the pinned model manifest ${url} could not be read (${err.message})`);
  }
  const pins = new Map();
  for (const f of manifest.files || []) {
    if (typeof f.url !== 'string' || !Number.isSafeInteger(f.size) || !/^[0-9a-f]{64}$/.test(f.sha256 || '')) {
      throw new StoreError('bad_model', `the pinned model manifest ${url} has a malformed entry: ${JSON.stringify(f).slice(0, 200)}`);
    }
    pins.set(f.part === 'encoder' ? encoderKey(f.url) : f.url, f);
  }
  return { revisions: manifest.revisions || {}, pins };
}

/** Lowercase hex SHA-256 of one shard (WebCrypto has no streaming digest;
 * every pinned file is under a shard's 1 GiB). */
export async function sha256Hex(shards) {
  if (shards.length !== 1) {
    throw new StoreError('bad_model', `a pinned file of ${totalLength(shards)} bytes is too large to check in one piece`);
  }
  const digest = await crypto.subtle.digest('SHA-256', shards[0]);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Throws `model_mismatch` unless `shards` are exactly the pinned file. */
async function checkPin(pin, shards, name) {
  if (!pin) return;
  const size = totalLength(shards);
  const sha = size === pin.size ? await sha256Hex(shards) : null;
  if (size === pin.size && sha === pin.sha256) return;
  const got = sha ? `SHA-256 ${sha.slice(0, 12)}…` : `${size} bytes`;
  const want = sha ? `${pin.sha256.slice(0, 12)}…` : `${pin.size}`;
  throw new StoreError('model_mismatch', `${name} (${pin.url}) is not the pinned file: ${got}, expected ${want}`, { url: pin.url });
}

// ---------------------------------------------------------------- cache

async function openCache() {
  // `caches` is missing in insecure contexts and some private modes: then the
  // model simply lives in memory for this visit.
  if (typeof caches === 'undefined') return null;
  try {
    return await caches.open(CACHE_NAME);
  } catch {
    return null;
  }
}

/** Cache key of the encoder-only Mimi rebuild. Not `url#encoder`: the Cache
 * API ignores URL fragments when matching, so that would alias the full file. */
export function encoderKey(url) {
  return url + (url.includes('?') ? '&' : '?') + 'stt-web-part=encoder';
}

/** Cache key of the remembered resolution of a `load` request (source + files),
 * so that a second visit needs no network at all, not even a probe. */
function manifestKey(baseUrl, lmFile) {
  const base = baseUrl ? encodeURIComponent(baseUrl) : 'auto';
  return new URL(`/__stt-web/manifest/${base}/${lmFile}`, self.location.href).href;
}

/** Reads a cached file into shards, or returns null when absent or damaged.
 * A body whose length differs from the stored `x-stt-length` is deleted so
 * that the caller downloads it again. */
async function readCached(cache, key, onProgress) {
  if (!cache) return null;
  const res = await cache.match(key);
  if (!res) return null;
  const expected = Number(res.headers.get(LENGTH_HEADER));
  try {
    const shards = await readBody(res, expected || undefined, onProgress);
    const length = totalLength(shards);
    if (Number.isFinite(expected) && expected > 0 && length === expected) return shards;
  } catch {
    /* unreadable entry: treat as damaged */
  }
  await cache.delete(key);
  return null;
}

/** Stores shards under `key`. Returns null on success, or the QuotaExceeded
 * error (the caller keeps the bytes in memory and tells the user). */
async function writeCached(cache, key, shards, contentType) {
  if (!cache) return null;
  const length = totalLength(shards);
  try {
    // A Blob can exceed 2 GB where one ArrayBuffer cannot.
    await cache.put(
      key,
      new Response(new Blob(shards), {
        headers: {
          'content-type': contentType || 'application/octet-stream',
          'content-length': String(length),
          [LENGTH_HEADER]: String(length),
        },
      }),
    );
    return null;
  } catch (err) {
    // QuotaExceededError in practice; any other storage failure is treated
    // the same way: the file stays in memory for this visit.
    return err;
  }
}

/** `navigator.storage.estimate()` or null where unavailable. */
export async function storageEstimate() {
  try {
    const { usage, quota } = await navigator.storage.estimate();
    return { usage, quota };
  } catch {
    return null;
  }
}

/** Deletes every downloaded model file (and the remembered sources). */
export async function clearModelCache() {
  if (typeof caches === 'undefined') return false;
  return caches.delete(CACHE_NAME);
}

/** Whether anything at all is stored (a full model or a partial download). */
export async function hasCachedFiles() {
  const cache = await openCache();
  return cache ? (await cache.keys()).length > 0 : false;
}

/** True when a `load` with these settings would need no network at all. */
export async function isModelCached(baseUrl, lmFile) {
  const cache = await openCache();
  if (!cache) return false;
  const manifest = await cache.match(manifestKey(baseUrl, lmFile));
  if (!manifest) return false;
  try {
    const { files } = await manifest.json();
    for (const f of files) if (!(await cache.match(f.key))) return false;
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- bytes

function totalLength(shards) {
  return shards.reduce((n, s) => n + s.byteLength, 0);
}

/** Concatenates shards into one Uint8Array (only for small files). */
export function concatShards(shards) {
  if (shards.length === 1) return shards[0];
  const out = new Uint8Array(totalLength(shards));
  let at = 0;
  for (const s of shards) {
    out.set(s, at);
    at += s.byteLength;
  }
  return out;
}

/** Reads a Response body as a stream into ≤ SHARD_BYTES Uint8Arrays, calling
 * onProgress(loaded, total) as bytes arrive. Never builds one buffer larger
 * than a shard, so multi-GB files work under the 2 GB ArrayBuffer limit. */
export async function readBody(res, expectedTotal, onProgress) {
  const total = expectedTotal ?? (Number(res.headers.get('content-length')) || 0);
  const shards = [];
  let shard = null; // preallocated when the total is known
  let shardAt = 0;
  let pending = []; // chunks of the current shard when the total is unknown
  let pendingBytes = 0;
  let loaded = 0;
  const flushPending = () => {
    if (pendingBytes) shards.push(concatShards(pending));
    pending = [];
    pendingBytes = 0;
  };
  const reader = res.body.getReader();
  let lastReport = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    let chunk = value;
    while (chunk.byteLength) {
      if (total && loaded < total) {
        if (!shard) {
          shard = new Uint8Array(Math.min(SHARD_BYTES, total - loaded));
          shardAt = 0;
        }
        const n = Math.min(chunk.byteLength, shard.byteLength - shardAt);
        shard.set(chunk.subarray(0, n), shardAt);
        shardAt += n;
        loaded += n;
        chunk = chunk.subarray(n);
        if (shardAt === shard.byteLength) {
          shards.push(shard);
          shard = null;
        }
      } else {
        // Unknown total, or more bytes than announced: gather and cut.
        const n = Math.min(chunk.byteLength, SHARD_BYTES - pendingBytes);
        pending.push(chunk.subarray(0, n));
        pendingBytes += n;
        loaded += n;
        chunk = chunk.subarray(n);
        if (pendingBytes === SHARD_BYTES) flushPending();
      }
    }
    // Progress at most every ~1 MB so postMessage does not dominate.
    if (onProgress && loaded - lastReport >= 1 << 20) {
      lastReport = loaded;
      onProgress(loaded, Math.max(total, loaded));
    }
  }
  if (shard) shards.push(shard.subarray(0, shardAt)); // shorter than announced
  flushPending();
  onProgress?.(loaded, Math.max(total, loaded));
  return shards;
}

// ---------------------------------------------------------------- network

async function fetchOk(url, init) {
  let res;
  try {
    res = await fetch(url, { cache: 'no-store', ...init });
  } catch (err) {
    throw new StoreError('download_failed', `could not reach ${url} (${err.message})`, { url });
  }
  if (!res.ok) {
    throw new StoreError('download_failed', `${url} answered ${res.status} ${res.statusText}`.trim(), {
      url,
      status: res.status,
    });
  }
  return res;
}

/** Whether a URL exists (cheap ranged GET; HEAD is often not CORS-friendly). */
async function probe(url) {
  try {
    const res = await fetch(url, { headers: { Range: 'bytes=0-0' }, cache: 'no-store' });
    res.body?.cancel().catch(() => {});
    return res.ok;
  } catch {
    return false;
  }
}

/** Fetches a whole file, from the cache when present and intact, else from
 * the network (then cached). Returns { shards, stored } where stored=false
 * means the quota refused it and it lives in memory only. */
async function fetchFile(cache, url, { onProgress, key = url, onQuota, memo, pins } = {}) {
  const cached = memo?.get(key) ?? (await readCached(cache, key, (l, t) => onProgress?.(l, t, true)));
  if (cached) return { shards: cached, fromCache: true };
  const res = await fetchOk(url);
  const shards = await readBody(res, undefined, (l, t) => onProgress?.(l, t, false));
  // Checked before it is used or kept: a cached file was checked once.
  await checkPin(pins?.get(key), shards, url.split('/').pop());
  const quota = await writeCached(cache, key, shards, res.headers.get('content-type'));
  if (quota) await onQuota?.(quota);
  return { shards, fromCache: false };
}

// ---------------------------------------------------------------- Mimi encoder

/** Reads an unsigned 64-bit little-endian length (safetensors header size). */
function readU64(bytes) {
  const v = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new StoreError('bad_model', 'safetensors header too large');
  return Number(v);
}

function parseHeader(bytes, url) {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new StoreError('bad_model', `${url} is not a safetensors file (bad header)`);
  }
}

/** Plans the encoder-only file: kept tensors in data order with new offsets,
 * and the merged source byte ranges (relative to the data section). */
function planEncoder(header) {
  const kept = Object.entries(header)
    .filter(([name]) => name !== '__metadata__' && isEncoderTensor(name))
    .map(([name, info]) => ({ name, info, start: info.data_offsets[0], end: info.data_offsets[1] }))
    .sort((a, b) => a.start - b.start);
  const ranges = []; // { start, end, out } in source data coordinates; out = offset in new data
  let out = 0;
  for (const t of kept) {
    t.newStart = out;
    out += t.end - t.start;
    const last = ranges[ranges.length - 1];
    if (last && last.end === t.start) last.end = t.end; // adjacent: one request
    else ranges.push({ start: t.start, end: t.end, out: t.newStart });
  }
  return { kept, ranges, dataBytes: out };
}

/** Builds the new safetensors header (same dtypes/shapes, new offsets),
 * space-padded to a multiple of 8 as the format recommends. */
function buildHeader(header, kept) {
  const obj = {};
  if (header.__metadata__) obj.__metadata__ = header.__metadata__;
  for (const t of kept) {
    obj[t.name] = { ...t.info, data_offsets: [t.newStart, t.newStart + (t.end - t.start)] };
  }
  let json = new TextEncoder().encode(JSON.stringify(obj));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  if (padded !== json.byteLength) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  return json;
}

function assemble(headerJson, dataBytes) {
  const out = new Uint8Array(8 + headerJson.byteLength + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerJson.byteLength), true);
  out.set(headerJson, 8);
  return out;
}

/** Strips a whole safetensors file (already in memory) down to the encoder. */
export function stripToEncoder(shards, url = 'mimi') {
  const whole = concatShards(shards);
  const n = readU64(whole.subarray(0, 8));
  const header = parseHeader(whole.subarray(8, 8 + n), url);
  const { kept, ranges, dataBytes } = planEncoder(header);
  const headerJson = buildHeader(header, kept);
  const out = assemble(headerJson, dataBytes);
  const base = 8 + n;
  const dataAt = 8 + headerJson.byteLength;
  for (const r of ranges) out.set(whole.subarray(base + r.start, base + r.end), dataAt + r.out);
  return out;
}

/**
 * Downloads only the encoder half of a Mimi safetensors file with HTTP Range
 * requests and rebuilds a valid safetensors buffer holding those tensors.
 * Falls back to a full download + strip when the server ignores Range (200).
 * Exported for tests: `fetchedBytes` vs `fileBytes` shows what was saved.
 *
 * @param {string} url
 * @param {{onProgress?: (loaded:number,total:number)=>void}} [opts]
 * @returns {Promise<{bytes: Uint8Array, fetchedBytes: number, fileBytes: number|null, ranged: boolean}>}
 */
export async function fetchMimiEncoder(url, { onProgress } = {}) {
  let fetchedBytes = 0;
  const ranged = async (start, endExclusive) => {
    const res = await fetchOk(url, { headers: { Range: `bytes=${start}-${endExclusive - 1}` } });
    return res;
  };
  const fullStrip = async (res) => {
    const shards = await readBody(res, undefined, onProgress);
    fetchedBytes += totalLength(shards);
    return { bytes: stripToEncoder(shards, url), fetchedBytes, fileBytes: fetchedBytes, ranged: false };
  };

  const first = await ranged(0, 8);
  if (first.status !== 206) return fullStrip(first);
  const lenBytes = new Uint8Array(await first.arrayBuffer());
  fetchedBytes += lenBytes.byteLength;
  if (lenBytes.byteLength < 8) throw new StoreError('bad_model', `${url} is too short to be safetensors`);
  const fileBytes = Number((first.headers.get('content-range') || '').split('/')[1]) || null;
  const n = readU64(lenBytes);

  const headRes = await ranged(8, 8 + n);
  if (headRes.status !== 206) return fullStrip(headRes);
  const headBytes = new Uint8Array(await headRes.arrayBuffer());
  fetchedBytes += headBytes.byteLength;
  const header = parseHeader(headBytes, url);
  const { kept, ranges, dataBytes } = planEncoder(header);
  if (!kept.length) throw new StoreError('bad_model', `${url} holds no Mimi encoder tensors`);
  const headerJson = buildHeader(header, kept);
  const out = assemble(headerJson, dataBytes);
  const dataAt = 8 + headerJson.byteLength;
  const base = 8 + n;

  let loaded = 0;
  onProgress?.(0, dataBytes);
  for (const r of ranges) {
    const res = await ranged(base + r.start, base + r.end);
    if (res.status !== 206) return fullStrip(res); // server changed its mind
    const reader = res.body.getReader();
    let at = dataAt + r.out;
    const limit = dataAt + r.out + (r.end - r.start);
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (at + value.byteLength > limit) throw new StoreError('download_failed', `${url}: range longer than asked`);
      out.set(value, at);
      at += value.byteLength;
      loaded += value.byteLength;
      fetchedBytes += value.byteLength;
      onProgress?.(loaded, dataBytes);
    }
    if (at !== limit) throw new StoreError('download_failed', `${url}: download cut short`);
  }
  return { bytes: out, fetchedBytes, fileBytes, ranged: true };
}

// ---------------------------------------------------------------- sources

/**
 * Resolves where each model file lives. With `baseUrl`, every file is
 * BASE/<name> and names come from BASE/config.json. Without it: ./model/ on
 * this origin when it serves a config.json (`stt-cli serve --model DIR`),
 * else the Hugging Face Hub defaults.
 * @returns {Promise<{base: string|null, config: {url: string, shards: Uint8Array[]}, files: object[]}>}
 */
async function resolveSource(cache, baseUrl, lmFile, ctx) {
  let base = baseUrl ? new URL(baseUrl.endsWith('/') ? baseUrl : baseUrl + '/', self.location.href).href : null;
  if (base) checkModelOrigin(base);
  if (!base) {
    const local = new URL('./model/', self.location.href).href;
    if ((await cache?.match(local + 'config.json')) || (await probe(local + 'config.json'))) base = local;
  }
  if (!base) {
    const quantized = hubBase(HF_QUANTIZED_REPO, ctx.revisions[HF_QUANTIZED_REPO]);
    const candle = hubBase(HF_CANDLE_REPO, ctx.revisions[HF_CANDLE_REPO]);
    const configUrl = quantized + 'config.json';
    const config = await fetchFile(cache, configUrl, ctx.progressFor('config.json'));
    return {
      config: { url: configUrl, shards: config.shards },
      files: [
        { role: 'lm', name: lmFile, url: quantized + lmFile },
        { role: 'mimi', name: DEFAULT_MIMI_NAME, url: candle + DEFAULT_MIMI_NAME },
        { role: 'tokenizer', name: DEFAULT_TOKENIZER_NAME, url: quantized + DEFAULT_TOKENIZER_NAME },
      ],
    };
  }
  const configUrl = base + 'config.json';
  const config = await fetchFile(cache, configUrl, ctx.progressFor('config.json'));
  let parsed;
  try {
    parsed = JSON.parse(new TextDecoder().decode(concatShards(config.shards)));
  } catch {
    throw new StoreError('bad_model', `${configUrl} is not valid JSON`);
  }
  const mimiName = parsed.mimi_name || DEFAULT_MIMI_NAME;
  const tokName = parsed.tokenizer_name || DEFAULT_TOKENIZER_NAME;
  const tokCandidates = [tokName];
  const asJson = tokName.replace(/\.[^./]+$/, '') + '.json';
  if (asJson !== tokName) tokCandidates.push(asJson);
  const lmCandidates = [lmFile, ...LM_FALLBACKS.filter((n) => n !== lmFile)];
  return {
    config: { url: configUrl, shards: config.shards },
    files: [
      { role: 'lm', candidates: lmCandidates.map((name) => ({ name, url: base + name })) },
      { role: 'mimi', name: mimiName, url: base + mimiName },
      { role: 'tokenizer', candidates: tokCandidates.map((name) => ({ name, url: base + name })) },
    ],
  };
}

/** Fetches the first candidate that exists (404 → next). In order, so a
 * cached fallback never shadows the file the user chose. */
async function fetchFirst(cache, candidates, ctx) {
  for (const c of candidates) {
    try {
      return { ...c, ...(await fetchFile(cache, c.url, ctx.fileOpts(c.name))) };
    } catch (err) {
      if (!(err instanceof StoreError && err.status === 404)) throw err;
    }
  }
  // Name the file the user asked for, not the last fallback tried.
  const [first, ...rest] = candidates;
  const also = rest.length ? ` (also tried ${rest.map((c) => c.name).join(', ')})` : '';
  throw new StoreError('download_failed', `${first.url} was not found (404)${also}`, { url: first.url, status: 404 });
}

/**
 * Fetches every model file (cache first), reporting progress, and returns
 * what Engine.create needs (minus `backend`).
 *
 * @param {{baseUrl: string|null, lmFile: string,
 *          onProgress?: (p:{file:string,loaded:number,total:number,cached:boolean})=>void,
 *          onQuota?: (estimate:{usage:number,quota:number}|null)=>void}} opts
 */
export async function loadModelFiles({ baseUrl, lmFile, onProgress, onQuota }) {
  const cache = await openCache();
  let quotaReported = false;
  let anyMemoryOnly = false;
  // Files already read from the cache in this call, so a fall back from the
  // fast path below never reads a large file twice.
  const memo = new Map();
  const ctx = {
    revisions: {},
    pins: new Map(),
    progressFor: (file) => ({
      memo,
      pins: ctx.pins,
      onProgress: (loaded, total, cached) => onProgress?.({ file, loaded, total, cached }),
      onQuota: async () => {
        anyMemoryOnly = true;
        if (!quotaReported) {
          quotaReported = true;
          onQuota?.(await storageEstimate());
        }
      },
    }),
  };
  ctx.fileOpts = (name) => ctx.progressFor(name);

  // Fast path: a remembered resolution whose files are all cached → no network.
  const mKey = manifestKey(baseUrl, lmFile);
  let files = null;
  if (cache) {
    const m = await cache.match(mKey);
    if (m) {
      try {
        const manifest = await m.json();
        const out = {};
        for (const f of manifest.files) {
          const shards = await readCached(cache, f.key, (l, t) => onProgress?.({ file: f.name, loaded: l, total: t, cached: true }));
          if (!shards) throw new Error('missing');
          memo.set(f.key, shards);
          out[f.role] = { name: f.name, shards };
        }
        files = out;
      } catch {
        files = null; // something was evicted or damaged: resolve again
      }
    }
  }

  if (!files) {
    Object.assign(ctx, await loadPins());
    const src = await resolveSource(cache, baseUrl, lmFile, ctx);
    files = { config: { name: 'config.json', shards: src.config.shards, key: src.config.url } };
    for (const f of src.files) {
      if (f.role === 'mimi') {
        const key = encoderKey(f.url);
        const progress = ctx.progressFor(f.name);
        let shards = memo.get(key) ?? await readCached(cache, key, progress.onProgress && ((l, t) => progress.onProgress(l, t, true)));
        if (!shards) {
          const { bytes } = await fetchMimiEncoder(f.url, { onProgress: (l, t) => progress.onProgress(l, t, false) });
          shards = [bytes];
          await checkPin(ctx.pins.get(key), shards, f.name);
          if (await writeCached(cache, key, shards)) await progress.onQuota();
        }
        files.mimi = { name: f.name, shards, key };
      } else {
        const got = f.candidates ? await fetchFirst(cache, f.candidates, ctx) : { ...f, ...(await fetchFile(cache, f.url, ctx.fileOpts(f.name))) };
        files[f.role] = { name: got.name, shards: got.shards, key: got.url };
      }
    }
    if (cache && !anyMemoryOnly) {
      const manifest = {
        files: Object.entries(files).map(([role, f]) => ({ role, name: f.name, key: f.key })),
      };
      await cache.put(mKey, new Response(JSON.stringify(manifest), { headers: { 'content-type': 'application/json' } })).catch(() => {});
    }
  }

  return {
    config: concatShards(files.config.shards),
    lm_name: files.lm.name,
    lm: files.lm.shards,
    mimi_name: files.mimi.name,
    mimi: files.mimi.shards,
    tokenizer_name: files.tokenizer.name,
    tokenizer: concatShards(files.tokenizer.shards),
    memoryOnly: anyMemoryOnly,
  };
}
