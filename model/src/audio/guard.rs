//! A last line of defence around symphonia: natively, a panic inside its
//! demuxers or decoders (it has a few on malformed files; `stt-fuzz` finds
//! them and the container checks in `ebml`/`mp4`/`decode` refuse the known
//! ones first) becomes a decode error instead of killing the process. In
//! wasm32 a panic aborts and cannot be caught: there the checks are the
//! defence, so every contained panic is counted, and the fuzz tests fail
//! on any.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once};

thread_local! {
    static GUARDED: Cell<bool> = const { Cell::new(false) };
}

static CONTAINED: AtomicUsize = AtomicUsize::new(0);
static LAST: Mutex<String> = Mutex::new(String::new());
static QUIET_HOOK: Once = Once::new();

/// Panics caught by [`guarded`] so far in this process.
pub fn contained_panics() -> usize {
    CONTAINED.load(Ordering::Relaxed)
}

/// Where and why the last contained panic happened (for the fuzzers).
pub fn last_contained() -> String {
    LAST.lock().map(|s| s.clone()).unwrap_or_default()
}

/// Runs `f`; a panic inside it is returned as Err(its message), and the
/// panic hook stays silent about it (other panics print as before).
pub(crate) fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    QUIET_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if GUARDED.with(Cell::get) {
                if let Ok(mut last) = LAST.lock() {
                    *last = info.to_string();
                }
            } else {
                previous(info);
            }
        }));
    });
    let was = GUARDED.with(|g| g.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(was));
    result.map_err(|payload| {
        CONTAINED.fetch_add(1, Ordering::Relaxed);
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into())
    })
}
