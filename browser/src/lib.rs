//! `stt-browser`: the Web Worker that runs stt-web in a browser tab
//! (wasm-bindgen, gloo-worker). Not built yet: a placeholder in the
//! workspace; `stt-model`, which it will wrap, already builds for wasm32.
