// capture-worklet.js — AudioWorkletProcessor for the microphone. It does one
// thing: downmix each 128-frame render quantum to mono and gather quanta into
// ~2048-sample chunks, posted to the main thread (the buffer is transferred).
// No resampling here: chunks are at the AudioContext's own rate, and the
// worker (Rust) resamples to 24 kHz, so every browser's device rate works.

const CHUNK_SAMPLES = 2048; // 16 quanta: ~43 ms at 48 kHz, few messages per second

class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.buffer = new Float32Array(CHUNK_SAMPLES);
    this.filled = 0;
    this.running = true;
    // 'flush' posts the partial chunk (on stop), 'close' ends the processor.
    this.port.onmessage = (e) => {
      if (e.data === 'flush' || e.data === 'close') this.flush();
      if (e.data === 'close') this.running = false;
    };
  }

  flush() {
    if (this.filled === 0) return;
    const chunk = this.buffer.slice(0, this.filled);
    this.port.postMessage(chunk, [chunk.buffer]);
    this.filled = 0;
  }

  process(inputs) {
    const channels = inputs[0];
    if (channels && channels.length > 0) {
      const frames = channels[0].length;
      for (let i = 0; i < frames; i++) {
        let sum = 0;
        for (let c = 0; c < channels.length; c++) sum += channels[c][i];
        this.buffer[this.filled++] = sum / channels.length;
        if (this.filled === CHUNK_SAMPLES) {
          this.port.postMessage(this.buffer, [this.buffer.buffer]);
          this.buffer = new Float32Array(CHUNK_SAMPLES);
          this.filled = 0;
        }
      }
    }
    return this.running; // false lets the node be collected after 'close'
  }
}

registerProcessor('stt-capture', CaptureProcessor);
