//! Reading the worker's JS values and making its errors: shared by the
//! engine and the benchmark entry points.

use js_sys::{Array, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;

use stt_model::error::Error;
use stt_model::weights::Shards;

/// A JS error whose message starts with the protocol's error code.
pub(crate) fn js_error(code: &str, message: impl std::fmt::Display) -> JsValue {
    js_sys::Error::new(&format!("[{code}] {message}")).into()
}

/// The protocol code for a core error.
fn code_of(e: &Error) -> &'static str {
    match e {
        Error::Gpu { kind, .. } => kind.code(),
        Error::Audio(_) => "bad_audio",
        Error::InvalidInput(_) => "bad_input",
        Error::Stepper(_) | Error::Candle(_) => "internal",
        _ => "bad_model",
    }
}

pub(crate) fn core_error(e: Error) -> JsValue {
    js_error(code_of(&e), &e)
}

pub(crate) fn now_s() -> f64 {
    js_sys::Date::now() / 1000.0
}

/// `obj[key]` as bytes (a `Uint8Array`).
pub(crate) fn bytes_field(obj: &JsValue, key: &str) -> Result<Vec<u8>, JsValue> {
    let v = Reflect::get(obj, &key.into())?;
    let a: Uint8Array = v
        .dyn_into()
        .map_err(|_| js_error("bad_input", format!("`{key}` is not a Uint8Array")))?;
    Ok(a.to_vec())
}

/// `obj[key]` as shards (an array of `Uint8Array`).
pub(crate) fn shards_field(obj: &JsValue, key: &str) -> Result<Shards, JsValue> {
    let v = Reflect::get(obj, &key.into())?;
    let parts: Array = v
        .dyn_into()
        .map_err(|_| js_error("bad_input", format!("`{key}` is not an array of shards")))?;
    let mut out = Vec::with_capacity(parts.length() as usize);
    for part in parts.iter() {
        let a: Uint8Array = part.dyn_into().map_err(|_| {
            js_error(
                "bad_input",
                format!("a shard of `{key}` is not a Uint8Array"),
            )
        })?;
        out.push(a.to_vec());
    }
    Ok(Shards::new(out))
}

pub(crate) fn string_field(obj: &JsValue, key: &str) -> Result<String, JsValue> {
    Reflect::get(obj, &key.into())?
        .as_string()
        .ok_or_else(|| js_error("bad_input", format!("`{key}` is not a string")))
}

/// Bytes of wasm linear memory now. It only grows, so after a load this is
/// the load's peak.
pub(crate) fn memory_bytes() -> f64 {
    wasm_bindgen::memory()
        .dyn_into::<js_sys::WebAssembly::Memory>()
        .map(|m| {
            m.buffer()
                .dyn_into::<js_sys::ArrayBuffer>()
                .map_or(0.0, |b| b.byte_length() as f64)
        })
        .unwrap_or(0.0)
}
