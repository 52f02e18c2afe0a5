// fixtures.mjs — deterministic test inputs, generated into a temp dir:
// a fake model directory (config, LM, Mimi-shaped safetensors, tokenizer),
// an alternative one that exercises the fallbacks, and audio files.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Deterministic bytes (xorshift), so fixtures are identical run to run. */
export function pseudoRandomBytes(n, seed = 1) {
  const out = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** A safetensors file shaped like Mimi: encoder and decoder halves, in the
 * sorted order safetensors writes, so the encoder spans several byte ranges. */
export function fakeMimi() {
  const tensors = [
    ['decoder.model.0.conv.conv.weight', [512, 256]],
    ['decoder_transformer.transformer.layers.0.linear1.weight', [256, 256]],
    ['downsample.conv.conv.conv.weight', [64, 64]],
    ['encoder.model.0.conv.conv.weight', [256, 300]],
    ['encoder.model.0.conv.conv.bias', [300]],
    ['encoder_transformer.transformer.layers.0.linear1.weight', [256, 256]],
    ['quantizer.acoustic_rvq.input_proj.weight', [64, 32]],
    ['quantizer.acoustic_rvq.output_proj.weight', [256, 64]],
    ['quantizer.semantic_rvq.layers.0._codebook.embedding_sum', [128, 64]],
    ['upsample.convtr.convtr.convtr.weight', [128, 64]],
  ];
  const header = { __metadata__: { format: 'pt' } };
  let at = 0;
  for (const [name, shape] of tensors) {
    const n = shape.reduce((a, b) => a * b, 1) * 4;
    header[name] = { dtype: 'F32', shape, data_offsets: [at, at + n] };
    at += n;
  }
  return buildSafetensors(header, pseudoRandomBytes(at, 7));
}

export function buildSafetensors(header, data) {
  let json = Buffer.from(JSON.stringify(header));
  const pad = (8 - (json.length % 8)) % 8;
  json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

/** Reference strip (independent of model-store.js) for byte comparison. */
export function stripMimiReference(file) {
  const n = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.subarray(8, 8 + n).toString());
  const keep = (k) => /^(encoder\.|encoder_transformer\.|downsample\.|quantizer\.)/.test(k) && !k.includes('output_proj');
  const out = header.__metadata__ ? { __metadata__: header.__metadata__ } : {};
  const parts = [];
  let at = 0;
  const names = Object.keys(header).filter((k) => k !== '__metadata__' && keep(k));
  names.sort((a, b) => header[a].data_offsets[0] - header[b].data_offsets[0]);
  for (const k of names) {
    const [s, e] = header[k].data_offsets;
    out[k] = { ...header[k], data_offsets: [at, at + e - s] };
    parts.push(file.subarray(8 + n + s, 8 + n + e));
    at += e - s;
  }
  return buildSafetensors(out, Buffer.concat(parts));
}

/** 16-bit PCM mono WAV: a tone with a slow swell (so the level meter moves). */
export function wav(seconds, rate) {
  const n = Math.round(seconds * rate);
  const buf = Buffer.alloc(44 + n * 2);
  buf.write('RIFF', 0);
  buf.writeUInt32LE(36 + n * 2, 4);
  buf.write('WAVEfmt ', 8);
  buf.writeUInt32LE(16, 16);
  buf.writeUInt16LE(1, 20);
  buf.writeUInt16LE(1, 22);
  buf.writeUInt32LE(rate, 24);
  buf.writeUInt32LE(rate * 2, 28);
  buf.writeUInt16LE(2, 32);
  buf.writeUInt16LE(16, 34);
  buf.write('data', 36);
  buf.writeUInt32LE(n * 2, 40);
  for (let i = 0; i < n; i++) {
    const t = i / rate;
    const v = Math.sin(2 * Math.PI * 220 * t) * (0.2 + 0.2 * Math.sin(2 * Math.PI * 0.7 * t));
    buf.writeInt16LE(Math.round(v * 32767), 44 + i * 2);
  }
  return buf;
}

export function makeFixtures() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stt-web-e2e-'));
  const mimiName = 'mimi-pytorch-e351c8d8@125.safetensors';
  const config = (extra = {}) =>
    JSON.stringify({ synthetic: true, mimi_name: mimiName, tokenizer_name: 'tokenizer_en_fr_audio_8000.model', ...extra }, null, 2);

  // /model/: what `stt-cli serve --model DIR` serves.
  const model = path.join(dir, 'model');
  fs.mkdirSync(model);
  fs.writeFileSync(path.join(model, 'config.json'), config());
  fs.writeFileSync(path.join(model, 'model-q4k.gguf'), Buffer.concat([Buffer.from('GGUF'), pseudoRandomBytes(6 << 20, 3)]));
  fs.writeFileSync(path.join(model, mimiName), fakeMimi());
  fs.writeFileSync(path.join(model, 'tokenizer_en_fr_audio_8000.model'), pseudoRandomBytes(40_000, 5));

  // /model-alt/: only a Q4_0 LM and a .json tokenizer (exercises the fallbacks),
  // and an engine that cannot use WebGPU (exercises the CPU retry).
  const alt = path.join(dir, 'model-alt');
  fs.mkdirSync(alt);
  fs.writeFileSync(path.join(alt, 'config.json'), config({ fake_fail_webgpu: true }));
  fs.writeFileSync(path.join(alt, 'model-q40.gguf'), Buffer.concat([Buffer.from('GGUF'), pseudoRandomBytes(1 << 20, 9)]));
  fs.writeFileSync(path.join(alt, mimiName), fakeMimi());
  fs.writeFileSync(path.join(alt, 'tokenizer_en_fr_audio_8000.json'), JSON.stringify({ model: { type: 'Unigram', vocab: [] } }));

  fs.writeFileSync(path.join(dir, 'mic.wav'), wav(4, 48000));
  fs.writeFileSync(path.join(dir, 'speech.wav'), wav(10, 16000));
  fs.writeFileSync(path.join(dir, 'notes.txt'), 'This is not audio.\n'.repeat(50));
  // /vendor/: the pinned manifest, empty (unpinned) unless a check writes one.
  const vendor = path.join(dir, 'vendor');
  fs.mkdirSync(vendor);
  return { dir, model, alt, vendor, mimiName };
}

