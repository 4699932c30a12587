//! What both fuzz targets share: how a panic is treated.
//!
//! `sticker_images::check` runs its decoders under `catch_unwind` on purpose (a decoder panic is
//! refused as `image_corrupt`, the worker thread lives), while libfuzzer-sys installs a panic hook
//! that aborts on *every* panic, caught or not. By default the targets replace that hook with one
//! that only logs each new panic location once (message and backtrace, prefixed
//! `kopilka-fuzz: panic`), so a caught decoder panic is reported without ending the run; a panic
//! that escapes the code under test still reaches libfuzzer-sys's own `catch_unwind`, which
//! aborts: a crash with an artifact. With `KOPILKA_FUZZ_STRICT_PANICS=1` libfuzzer-sys's hook is
//! kept and any panic at all is a crash.

use std::collections::HashSet;
use std::sync::{Mutex, Once};

static INSTALL: Once = Once::new();
static SEEN: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// Call first in every fuzz target; cheap after the first call.
pub fn init() {
    INSTALL.call_once(|| {
        if std::env::var_os("KOPILKA_FUZZ_STRICT_PANICS").is_some_and(|v| v != "0") {
            return;
        }
        drop(std::panic::take_hook());
        std::panic::set_hook(Box::new(|info| {
            let location = info
                .location()
                .map_or_else(|| "<unknown>".to_owned(), ToString::to_string);
            let first = SEEN
                .lock()
                .map(|mut seen| {
                    seen.get_or_insert_with(HashSet::new)
                        .insert(location.clone())
                })
                .unwrap_or(true);
            if !first {
                return;
            }
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "<non-string payload>".to_owned());
            eprintln!(
                "kopilka-fuzz: panic at {location}: {message}\n{}",
                std::backtrace::Backtrace::force_capture()
            );
        }));
    });
}

/// With `KOPILKA_FUZZ_VERBOSE=1` the targets print each input's outcome (to check the seeds:
/// `fuzz/target/.../sticker_image fuzz/seeds/sticker_image/*`); off while fuzzing.
pub fn verbose() -> bool {
    static VERBOSE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *VERBOSE.get_or_init(|| std::env::var_os("KOPILKA_FUZZ_VERBOSE").is_some_and(|v| v != "0"))
}
