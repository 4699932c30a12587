//! Arbitrary bytes as one uploaded sticker image, checked with the default rules for a static
//! and for an animated pack (the route's `sticker_images::check`, sync: run on a blocking thread
//! there). An input that is not the pack's kind is refused from its headers, so each input is
//! decoded at most once. `pixel_cost` (read by the route before the check) is fed too.
#![no_main]

use std::sync::OnceLock;

use kopilka::services::sticker_images::{check, pixel_cost, Kind, Rules};
use libfuzzer_sys::fuzz_target;

static RULES: OnceLock<Rules> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    kopilka_fuzz::init();
    let rules = RULES.get_or_init(Rules::default);
    let _ = pixel_cost(data);
    for kind in [Kind::Static, Kind::Animated] {
        let outcome = check(data, kind, rules);
        if kopilka_fuzz::verbose() {
            match &outcome {
                Ok(e) => eprintln!(
                    "{kind:?}: accepted, {} frames, {} bytes",
                    e.frames,
                    e.image.len()
                ),
                Err(refusal) => eprintln!("{kind:?}: {refusal}"),
            }
        }
        if let Ok(encoded) = outcome {
            // What is accepted is what is served: it must obey the rules it was checked by.
            let limit = match kind {
                Kind::Static => rules.max_static_bytes,
                Kind::Animated => rules.max_animated_bytes,
            };
            assert!(
                encoded.image.len() <= limit,
                "accepted output over its limit"
            );
            assert!(encoded.frames >= 1 && encoded.frames <= rules.max_frames);
            assert!(encoded.duration_ms <= rules.max_duration_ms);
        }
    }
});
