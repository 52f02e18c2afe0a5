// stt-client.js — a small JS API around the stt-web worker, used by the page
// and meant for embedding stt-web in other pages.
//
//   import { SttClient } from './stt-client.js';
//   const client = new SttClient();
//   client.addEventListener('word', (e) => console.log(e.detail.text, e.detail.start_s));
//   await client.load({ lmFile: 'model-q4k.gguf' });
//   await client.startMicrophone();   // from a click handler
//   ...
//   await client.stop();              // flushes the last words
//   const srt = await client.export('srt');
//
// Events (an EventTarget; each is a CustomEvent whose `detail` is the worker's
// protocol message, fields in snake_case):
//   partial    {text, start_s}                 the word being spoken, may change
//   word       {index, text, start_s, end_s}   a final word; a repeated index replaces
//   endOfTurn  {time_s}                        the speaker finished a turn
//   progress   {phase:'download'|'file', file, loaded, total, cached?}
//   status     {state, backend?, adapter?, notice?, code?, synthetic?, storage?,
//               memory_only?, lm_file? (the LM file actually loaded)}
//   error      {code, message}                 plain message; the worker lives on
//   stats      {audio_s, elapsed_s, realtime_factor, steps}
//   level      {rms}                           microphone loudness, 0..1 (for meters)
//   restarted  {}                              a new worker has the model loaded again
// Constructor callbacks (onWord, onPartial, …) are shorthands for these listeners.
//
// Every method that talks to the worker returns a Promise that resolves when
// the worker answers `done` for it, and rejects with an Error carrying `.code`
// when the worker reported an error for it (the `error` event fires as well).
//
// If the engine crashes (error code 'engine_crashed': a wasm trap, which
// leaves the worker unusable), the client restarts by itself: a new worker,
// the same model loaded again (from the device's cache), and the transcript
// so far handed back so exports still hold it; the microphone stops (press
// Record again). `restart()` does the same on demand.

const EVENT_OF = {
  partial: 'partial',
  word: 'word',
  end_of_turn: 'endOfTurn',
  progress: 'progress',
  status: 'status',
  error: 'error',
  stats: 'stats',
};

const CALLBACKS = {
  onPartial: 'partial',
  onWord: 'word',
  onEndOfTurn: 'endOfTurn',
  onProgress: 'progress',
  onStatus: 'status',
  onError: 'error',
  onStats: 'stats',
  onLevel: 'level',
};

/** An Error with a protocol `code` (e.g. 'mic_denied', 'bad_audio'). */
export class SttError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'SttError';
    this.code = code;
  }
}

export class SttClient extends EventTarget {
  /**
   * Starts the worker. Nothing is downloaded until `load()`.
   * @param {object} [options]
   * @param {string|URL} [options.workerUrl] the module worker (default: worker.js beside this file)
   * @param {string|URL} [options.workletUrl] the capture worklet (default: capture-worklet.js beside this file)
   * @param {(detail:object)=>void} [options.onPartial] and onWord, onEndOfTurn, onProgress,
   *   onStatus, onError, onStats, onLevel: shorthand listeners (receive `event.detail`)
   */
  constructor(options = {}) {
    super();
    this.workletUrl = new URL(options.workletUrl ?? './capture-worklet.js', import.meta.url);
    this.workerUrl = new URL(options.workerUrl ?? './worker.js', import.meta.url);
    /** Requests awaiting `done`, in order (the worker answers in order). */
    this.pending = [];
    this.mic = null;
    /** The last `load` request, sent again by `restart()`. */
    this.lastLoad = null;
    /** The current stream's transcript as the events gave it, for `restart()`. */
    this.copy = { source: '', words: [], endOfTurn: [], micRate: 0 };
    this.restarting = false;
    for (const [key, type] of Object.entries(CALLBACKS)) {
      if (typeof options[key] === 'function') this.addEventListener(type, (e) => options[key](e.detail));
    }
    this.#startWorker();
  }

  /**
   * Downloads (or reads from the device's cache) and loads the model.
   * Progress arrives as `progress` events, then `status` {state:'ready', backend, adapter}.
   * @param {object} [opts]
   * @param {string|null} [opts.baseUrl] where the model files are (null: ./model/ if served, else Hugging Face)
   * @param {string} [opts.lmFile] 'model-q4k.gguf' (default) or 'model-q80.gguf'
   * @param {'auto'|'webgpu'|'cpu'} [opts.backend] default 'auto' (WebGPU, else CPU)
   * @param {number} [opts.temperature] text sampling temperature; 0 (default) is greedy,
   *   exactly moshi's choice; Kyutai suggests ~0.25 if greedy decoding stops transcribing
   * @param {number} [opts.seed] seed of the sampled draws (default 0)
   * @returns {Promise<void>}
   */
  load({ baseUrl = null, lmFile = 'model-q4k.gguf', backend = 'auto', temperature = 0, seed = 0 } = {}) {
    this.lastLoad = { type: 'load', base_url: baseUrl || null, lm_file: lmFile, backend, temperature, seed };
    return this.#request({ ...this.lastLoad });
  }

  /**
   * Replaces the worker with a new one: requests still waiting reject with
   * code 'restarted', the microphone stops, the last model is loaded again
   * and the transcript so far is handed to the new worker (exports keep it).
   * Done by itself after an 'engine_crashed' error.
   * @returns {Promise<void>} resolves once the model is ready again
   */
  async restart() {
    await this.#stopMicrophone();
    this.copy.micRate = 0; // the live stream ended with the old worker
    this.worker.onmessage = null;
    this.worker.onerror = null;
    this.worker.terminate();
    for (const p of this.pending.splice(0)) {
      p.reject?.(p.error ? new SttError(p.error.code, p.error.message) : new SttError('restarted', 'the speech worker was restarted'));
    }
    this.#startWorker();
    if (!this.lastLoad) return;
    await this.#request({ ...this.lastLoad });
    const { source, words, endOfTurn } = this.copy;
    if (words.length || endOfTurn.length) {
      await this.#request({
        type: 'restore',
        source,
        words: words.filter(Boolean).map(({ text, start_s, end_s }) => ({ text, start_s, end_s })),
        end_of_turn_s: endOfTurn,
      });
    }
    this.#emit('restarted', {});
  }

  /**
   * Starts capturing the microphone and streaming it to the model. Call from a
   * user gesture (click): browsers only start audio then. Rejects with code
   * 'mic_denied', 'no_microphone' or 'insecure_context'.
   * @returns {Promise<void>}
   */
  async startMicrophone() {
    if (this.mic) return;
    if (!globalThis.isSecureContext || !navigator.mediaDevices?.getUserMedia) {
      throw this.#fail('insecure_context', 'The microphone needs a secure page (https:// or localhost).');
    }
    let stream;
    try {
      // Raw audio: the model was trained on unprocessed speech, and browser
      // noise suppression / AGC smear word onsets.
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      });
    } catch (err) {
      if (err?.name === 'NotFoundError' || err?.name === 'OverconstrainedError') {
        throw this.#fail('no_microphone', 'No microphone was found. Plug one in, or transcribe an audio file instead.');
      }
      if (err?.name === 'NotReadableError') {
        throw this.#fail('mic_busy', 'The microphone is in use by another application or could not be opened.');
      }
      throw this.#fail('mic_denied', 'Microphone access was blocked. Allow the microphone for this site (the icon in the address bar), then try again.');
    }
    let context;
    try {
      // The device's own rate: forcing one fails on Firefox when it differs
      // from the microphone's; the worker resamples to 24 kHz.
      context = new AudioContext();
      await context.audioWorklet.addModule(this.workletUrl);
      const source = context.createMediaStreamSource(stream);
      const node = new AudioWorkletNode(context, 'stt-capture', { numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1] });
      const sampleRate = context.sampleRate;
      node.port.onmessage = (e) => {
        const samples = e.data;
        let sum = 0;
        for (let i = 0; i < samples.length; i++) sum += samples[i] * samples[i];
        this.#emit('level', { rms: Math.sqrt(sum / Math.max(1, samples.length)) });
        this.pushAudio(samples, sampleRate);
      };
      source.connect(node);
      // The node writes silence; connecting it keeps the graph pulling it.
      node.connect(context.destination);
      if (context.state === 'suspended') await context.resume();
      this.mic = { stream, context, source, node };
    } catch (err) {
      stream.getTracks().forEach((t) => t.stop());
      context?.close().catch(() => {});
      throw this.#fail('internal', `Could not start audio capture: ${err.message}`);
    }
  }

  /** True while the microphone is being captured. */
  get recording() {
    return this.mic !== null;
  }

  /**
   * Streams raw audio to the model (for callers with their own capture).
   * The buffer is transferred: do not use `samples` afterwards.
   * @param {Float32Array} samples mono PCM in [-1, 1]
   * @param {number} sampleRate its rate in Hz (any; resampled to 24 kHz in the worker)
   */
  pushAudio(samples, sampleRate) {
    // As the engine does: a new rate (or the first audio) starts a new stream.
    if (this.copy.micRate !== sampleRate) this.#newCopy('microphone', sampleRate);
    this.pending.push({ type: 'audio' });
    this.worker.postMessage({ type: 'audio', samples, sample_rate: sampleRate }, [samples.buffer]);
  }

  /**
   * Transcribes an audio file (any format the engine decodes) as fast as the
   * engine goes; `progress` events have phase 'file'. Resolves when the whole
   * file, flushed, is transcribed. Rejects with code 'bad_audio' for non-audio.
   * @param {File|Blob} file
   * @returns {Promise<void>}
   */
  async transcribeFile(file) {
    const bytes = new Uint8Array(await file.arrayBuffer());
    this.#newCopy(file.name || 'audio');
    return this.#request({ type: 'file', bytes, name: file.name || 'audio' }, [bytes.buffer]);
  }

  /**
   * Ends the stream: stops the microphone if on (tracks, nodes, context), then
   * asks the worker to flush, so the last words come out before this resolves.
   * @returns {Promise<void>}
   */
  async stop() {
    await this.#stopMicrophone();
    this.copy.micRate = 0;
    return this.#request({ type: 'stop' });
  }

  /**
   * Forgets the current stream and transcript (the model stays loaded).
   * @returns {Promise<void>}
   */
  async reset() {
    await this.#stopMicrophone();
    this.#newCopy('');
    return this.#request({ type: 'reset' });
  }

  /**
   * Renders the transcript in the worker, byte-identical to `stt-cli`.
   * @param {'txt'|'srt'|'vtt'|'json'} format
   * @returns {Promise<string>}
   */
  export(format) {
    return this.#request({ type: 'export', format });
  }

  /** Stops the microphone and terminates the worker (frees the model). */
  dispose() {
    this.#stopMicrophone();
    this.worker.terminate();
    for (const p of this.pending.splice(0)) p.reject?.(new SttError('internal', 'the client was disposed'));
  }

  // ------------------------------------------------------------ internals

  #startWorker() {
    this.worker = new Worker(this.workerUrl, { type: 'module' });
    this.worker.onmessage = (e) => this.#onMessage(e.data);
    // The worker script itself failed (e.g. a syntax error, or a missing file).
    this.worker.onerror = (e) => {
      e.preventDefault?.();
      const err = { type: 'error', code: 'internal', message: `the speech worker failed to start (${e.message || 'script error'})` };
      this.#emit('error', err);
      for (const p of this.pending.splice(0)) p.reject?.(new SttError(err.code, err.message));
    };
  }

  #newCopy(source, micRate = 0) {
    this.copy = { source, words: [], endOfTurn: [], micRate };
  }

  /** After a crash: one restart at a time, and none for a crash during one. */
  async #recover() {
    if (this.restarting) return;
    this.restarting = true;
    try {
      await this.restart();
    } catch {
      /* its error event was emitted */
    } finally {
      this.restarting = false;
    }
  }

  async #stopMicrophone() {
    const mic = this.mic;
    if (!mic) return;
    this.mic = null;
    // Post the partly filled last chunk, then tear everything down.
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, 150);
      const prev = mic.node.port.onmessage;
      mic.node.port.onmessage = (e) => {
        prev(e);
        clearTimeout(timer);
        resolve();
      };
      mic.node.port.postMessage('close');
    });
    mic.stream.getTracks().forEach((t) => t.stop());
    mic.source.disconnect();
    mic.node.disconnect();
    mic.node.port.onmessage = null;
    await mic.context.close().catch(() => {});
  }

  #request(msg, transfer = []) {
    return new Promise((resolve, reject) => {
      this.pending.push({ type: msg.type, resolve, reject, error: null, result: undefined });
      this.worker.postMessage(msg, transfer);
    });
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  #fail(code, message) {
    this.#emit('error', { type: 'error', code, message });
    return new SttError(code, message);
  }

  #onMessage(msg) {
    if (!msg || typeof msg.type !== 'string') return;
    const head = this.pending[0];
    switch (msg.type) {
      case 'done': {
        const p = this.pending.shift();
        if (!p) return;
        if (p.error || msg.ok === false) {
          const e = p.error ?? { code: 'internal', message: `${msg.request} failed` };
          p.reject?.(new SttError(e.code, e.message));
        } else {
          p.resolve?.(p.result);
        }
        return;
      }
      case 'export':
        if (head) head.result = msg.text;
        return;
      case 'error':
        if (head && !head.error) head.error = msg;
        this.#emit('error', msg);
        if (msg.code === 'engine_crashed') queueMicrotask(() => this.#recover());
        return;
      case 'word':
        this.copy.words[msg.index] = msg;
        this.#emit('word', msg);
        return;
      case 'end_of_turn':
        this.copy.endOfTurn.push(msg.time_s);
        this.#emit('endOfTurn', msg);
        return;
      default: {
        const type = EVENT_OF[msg.type];
        if (type) this.#emit(type, msg);
      }
    }
  }
}
