#!/usr/bin/env node
// pin-models.mjs — writes the page's pinned model manifest
// (browser/web/vendor/models.json): for every file the page downloads, its
// URL at a fixed revision, size and SHA-256, so a file that changed upstream
// (or was tampered with on the way) is refused before use.
//
//   node scripts/pin-models.mjs > browser/web/vendor/models.json
//       The page's defaults, from the Hugging Face Hub (needs the network):
//       each repo's `main` resolved to its commit, every default file
//       downloaded once (~2 GB) and hashed.
//   node scripts/pin-models.mjs --base URL [--lm NAME]... [--mimi NAME] [--tokenizer NAME]
//       Any model folder (the tests pin their local server's files).
//
// Mimi is pinned as the page keeps it: its encoder-only rebuild, made by
// model-store.js's own stripToEncoder (so the bytes are the page's).

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
// model-store.js is a browser module (.js, no package.json "type"): import
// its text as a module so the strip is the page's, byte for byte.
const storeSource = fs.readFileSync(path.join(HERE, '../browser/web/model-store.js'), 'utf8');
const store = await import(`data:text/javascript;base64,${Buffer.from(storeSource).toString('base64')}`);

const DEFAULT_LMS = ['model-q4k.gguf', 'model-q80.gguf'];
const DEFAULT_TOKENIZER = 'tokenizer_en_fr_audio_8000.json';

function usage(message) {
  console.error(`${message}\nusage: node scripts/pin-models.mjs [--base URL [--lm NAME]... [--mimi NAME] [--tokenizer NAME]]`);
  process.exit(2);
}

async function download(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url} answered ${res.status} ${res.statusText}`);
  return new Uint8Array(await res.arrayBuffer());
}

async function pinFile(url, part) {
  let bytes = await download(url);
  if (part === 'encoder') bytes = store.stripToEncoder([bytes], url);
  const sha256 = crypto.createHash('sha256').update(bytes).digest('hex');
  console.error(`pinned ${url}${part ? ` (${part})` : ''}: ${bytes.byteLength} bytes, ${sha256}`);
  return { url, ...(part ? { part } : {}), size: bytes.byteLength, sha256 };
}

async function hubRevision(repo) {
  const res = await fetch(`https://huggingface.co/api/models/${repo}/revision/main`);
  if (!res.ok) throw new Error(`the Hub did not resolve ${repo}@main: ${res.status}`);
  const { sha } = await res.json();
  if (!/^[0-9a-f]{40}$/.test(sha || '')) throw new Error(`the Hub gave no commit for ${repo}`);
  return sha;
}

async function main() {
  const args = process.argv.slice(2);
  const opt = { base: null, lms: [], mimi: store.DEFAULT_MIMI_NAME, tokenizer: 'tokenizer_en_fr_audio_8000.model' };
  for (let i = 0; i < args.length; i++) {
    const value = () => args[++i] ?? usage(`${args[i - 1]} needs a value`);
    if (args[i] === '--base') opt.base = value();
    else if (args[i] === '--lm') opt.lms.push(value());
    else if (args[i] === '--mimi') opt.mimi = value();
    else if (args[i] === '--tokenizer') opt.tokenizer = value();
    else usage(`unknown argument ${args[i]}`);
  }
  const manifest = { about: 'Written by scripts/pin-models.mjs; model-store.js refuses a downloaded file at one of these URLs unless its size and SHA-256 match.', revisions: {}, files: [] };
  if (opt.base) {
    const base = opt.base.endsWith('/') ? opt.base : `${opt.base}/`;
    for (const name of ['config.json', ...(opt.lms.length ? opt.lms : DEFAULT_LMS), opt.tokenizer]) {
      manifest.files.push(await pinFile(base + name));
    }
    manifest.files.push(await pinFile(base + opt.mimi, 'encoder'));
  } else {
    const quantized = await hubRevision(store.HF_QUANTIZED_REPO);
    const candle = await hubRevision(store.HF_CANDLE_REPO);
    manifest.revisions = { [store.HF_QUANTIZED_REPO]: quantized, [store.HF_CANDLE_REPO]: candle };
    const q = `https://huggingface.co/${store.HF_QUANTIZED_REPO}/resolve/${quantized}/`;
    const c = `https://huggingface.co/${store.HF_CANDLE_REPO}/resolve/${candle}/`;
    for (const name of ['config.json', ...DEFAULT_LMS, DEFAULT_TOKENIZER]) manifest.files.push(await pinFile(q + name));
    manifest.files.push(await pinFile(c + store.DEFAULT_MIMI_NAME, 'encoder'));
  }
  process.stdout.write(`${JSON.stringify(manifest, null, 2)}\n`);
}

main().catch((err) => {
  console.error(`pin-models: ${err.message}`);
  process.exit(1);
});
