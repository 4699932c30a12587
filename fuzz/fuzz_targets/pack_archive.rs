//! Arbitrary bytes as one pack archive (ZIP with `pack.toml` or `pack.json`), read by
//! `pack_archive::read` with the default limits and 120 stickers at most, as the archive route
//! does with the default configuration (it reads from a spooled file; a Cursor is the same
//! `Read + Seek`). The images inside are not decoded here: `sticker_image` covers that.
#![no_main]

use std::io::Cursor;
use std::sync::OnceLock;

use kopilka::error::AppError;
use kopilka::services::pack_archive::{read, ArchiveLimits};
use libfuzzer_sys::fuzz_target;

/// `packs.max_stickers` in config/default.toml.
const MAX_STICKERS: i32 = 120;

static LIMITS: OnceLock<ArchiveLimits> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    kopilka_fuzz::init();
    let limits = LIMITS.get_or_init(ArchiveLimits::default);
    let outcome = read(Cursor::new(data), limits, MAX_STICKERS);
    if kopilka_fuzz::verbose() {
        match &outcome {
            Ok(c) => eprintln!(
                "accepted: {} stickers, {} files",
                c.manifest.stickers.len(),
                c.files.len()
            ),
            Err(AppError::Client { code, detail, .. }) => eprintln!("refused: {code}: {detail}"),
            Err(other) => eprintln!("failed: {other}"),
        }
    }
    if let Ok(contents) = outcome {
        // What is accepted must obey the limits it was read with.
        let total: u64 = contents.files.values().map(|f| f.len() as u64).sum();
        assert!(total <= limits.max_total_bytes);
        assert!(contents
            .files
            .values()
            .all(|f| f.len() as u64 <= limits.max_entry_bytes));
        assert!(!contents.manifest.stickers.is_empty());
        assert!(contents.manifest.stickers.len() <= MAX_STICKERS as usize);
        for sticker in &contents.manifest.stickers {
            assert!(contents.files.contains_key(&sticker.file));
        }
    }
});
