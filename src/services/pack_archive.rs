//! A pack as one ZIP: `pack.toml` (or `pack.json`) and the images it names, at the archive's
//! root. Archives are read defensively: the upload is spooled to disk under a cap, every entry
//! is read through a bounded reader, and anything that could escape, loop or explode is refused
//! before an image is decoded.

use super::pack_import::{plain_name, Manifest};
use crate::error::AppError;
use std::collections::HashMap;
use std::io::{Read, Seek};

/// Limits of one archive (LINE's Creators Market takes ZIPs of up to 20 MiB).
pub struct ArchiveLimits {
    pub max_entries: usize,
    pub max_total_bytes: u64,
    pub max_entry_bytes: u64,
    /// Largest uncompressed/compressed ratio of an entry.
    pub max_ratio: u64,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        ArchiveLimits {
            max_entries: 200,
            max_total_bytes: 64 * 1024 * 1024,
            max_entry_bytes: 4 * 1024 * 1024,
            max_ratio: 100,
        }
    }
}

fn refuse(code: &'static str, detail: String) -> AppError {
    AppError::unprocessable(code, detail)
}

/// The manifest and the named files of an archive, every rule checked.
pub struct Contents {
    pub manifest: Manifest,
    pub files: HashMap<String, Vec<u8>>,
}

const S_IFMT: u32 = 0o170_000;
const S_IFLNK: u32 = 0o120_000;

pub fn read<R: Read + Seek>(
    reader: R,
    limits: &ArchiveLimits,
    max_stickers: i32,
) -> Result<Contents, AppError> {
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| {
        refuse(
            "archive_corrupt",
            format!("not a readable ZIP archive: {e}"),
        )
    })?;
    if zip.len() > limits.max_entries {
        return Err(refuse(
            "archive_too_many_entries",
            format!("at most {} entries, got {}", limits.max_entries, zip.len()),
        ));
    }
    let mut files: HashMap<String, Vec<u8>> = HashMap::new();
    let mut lower = std::collections::HashSet::new();
    let mut total: u64 = 0;
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| refuse("archive_corrupt", format!("entry {i}: {e}")))?;
        let name = entry.name().to_owned();
        if name.contains("..")
            || name.starts_with('/')
            || name.contains('\\')
            || name.contains(':')
            || name.contains('\0')
        {
            return Err(refuse(
                "archive_unsafe_path",
                format!("entry {name:?}: paths must stay inside the archive"),
            ));
        }
        // Resource forks and hidden files that archivers add are not part of the pack.
        if name.starts_with("__MACOSX/") || name.split('/').any(|c| c.starts_with('.')) {
            continue;
        }
        if entry.unix_mode().is_some_and(|m| m & S_IFMT == S_IFLNK) {
            return Err(refuse(
                "archive_unsafe_path",
                format!("entry {name:?} is a symbolic link"),
            ));
        }
        if entry.is_dir() {
            continue;
        }
        if !plain_name(&name) {
            return Err(refuse(
                "archive_layout",
                format!("entry {name:?}: files sit at the archive's root, no folders"),
            ));
        }
        if !lower.insert(name.to_lowercase()) {
            return Err(refuse(
                "archive_duplicate_name",
                format!("two entries are named {name:?} (ignoring case)"),
            ));
        }
        let declared = entry.size();
        let compressed = entry.compressed_size().max(1);
        if declared > limits.max_entry_bytes {
            return Err(refuse(
                "file_too_large",
                format!(
                    "entry {name:?} is {declared} bytes; at most {}",
                    limits.max_entry_bytes
                ),
            ));
        }
        if declared / compressed > limits.max_ratio {
            return Err(refuse(
                "archive_bomb",
                format!(
                    "entry {name:?} expands {}:1; at most {}:1",
                    declared / compressed,
                    limits.max_ratio
                ),
            ));
        }
        // The declared size may lie: read at most one byte more than allowed.
        let mut bytes = Vec::new();
        (&mut entry)
            .take(limits.max_entry_bytes + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| refuse("archive_corrupt", format!("entry {name:?}: {e}")))?;
        let len = bytes.len() as u64;
        if len > limits.max_entry_bytes || len / compressed > limits.max_ratio {
            return Err(refuse(
                "archive_bomb",
                format!("entry {name:?} holds more than it declares"),
            ));
        }
        total += len;
        if total > limits.max_total_bytes {
            return Err(refuse(
                "archive_too_large",
                format!(
                    "at most {} bytes uncompressed in all",
                    limits.max_total_bytes
                ),
            ));
        }
        if bytes.starts_with(b"PK\x03\x04") || name.to_lowercase().ends_with(".zip") {
            return Err(refuse(
                "archive_nested",
                format!("entry {name:?} is an archive; archives do not nest"),
            ));
        }
        files.insert(name, bytes);
    }
    let manifest = match (files.remove("pack.toml"), files.remove("pack.json")) {
        (Some(toml), None) => Manifest::parse(
            std::str::from_utf8(&toml)
                .map_err(|_| refuse("invalid_manifest", "pack.toml is not UTF-8".into()))?,
            max_stickers,
        )?,
        (None, Some(json)) => {
            let text = std::str::from_utf8(&json)
                .map_err(|_| refuse("invalid_manifest", "pack.json is not UTF-8".into()))?;
            Manifest::from_json(text, max_stickers)?
        }
        (Some(_), Some(_)) => {
            return Err(refuse(
                "invalid_manifest",
                "an archive holds pack.toml or pack.json, not both".into(),
            ))
        }
        (None, None) => {
            return Err(refuse(
                "invalid_manifest",
                "the archive has no pack.toml (or pack.json) at its root".into(),
            ))
        }
    };
    for s in &manifest.stickers {
        if !files.contains_key(&s.file) {
            return Err(refuse(
                "invalid_manifest",
                format!(
                    "pack.toml names {:?}, which the archive does not hold",
                    s.file
                ),
            ));
        }
    }
    if let Some(c) = &manifest.cover {
        if !files.contains_key(c) {
            return Err(refuse(
                "invalid_manifest",
                format!("pack.toml names {c:?} as its cover, which the archive does not hold"),
            ));
        }
    }
    Ok(Contents { manifest, files })
}

/// One sticker of a published pack's archive: its permanent id, emoji and our image.
pub struct Published {
    pub sticker_id: String,
    pub emoji: String,
    pub image: Vec<u8>,
}

/// The published pack as one ZIP: `pack.json` (the pack id and each sticker's permanent id,
/// file and emoji; no texts, which revisions may change) and the images, in position order.
/// Deterministic: the same pack always gives the same bytes (entries stored, the 1980 epoch as
/// every entry's time), so its SHA-256 names it.
pub fn build(pack_id: &str, stickers: &[Published]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default());
    let entries: Vec<serde_json::Value> = stickers
        .iter()
        .enumerate()
        .map(|(i, s)| {
            serde_json::json!({
                "id": s.sticker_id,
                "file": format!("{:03}.png", i + 1),
                "emoji": s.emoji.split(' ').collect::<Vec<_>>(),
            })
        })
        .collect();
    let manifest = serde_json::json!({ "id": pack_id, "stickers": entries });
    zip.start_file("pack.json", opts)?;
    zip.write_all(manifest.to_string().as_bytes())?;
    for (i, s) in stickers.iter().enumerate() {
        zip.start_file(format!("{:03}.png", i + 1), opts)?;
        zip.write_all(&s.image)?;
    }
    Ok(zip.finish()?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};
    use zip::write::SimpleFileOptions;

    fn archive(entries: &[(&str, &[u8])]) -> Cursor<Vec<u8>> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, bytes) in entries {
            w.start_file(*name, SimpleFileOptions::default()).unwrap();
            w.write_all(bytes).unwrap();
        }
        Cursor::new(w.finish().unwrap().into_inner())
    }

    const MANIFEST: &[u8] = b"title = \"T\"\nkind = \"static\"\n[[stickers]]\nfile = \"a.png\"\nemoji = \"\xF0\x9F\x98\x80\"\n";

    fn code(r: Result<Contents, AppError>) -> String {
        match r {
            Err(AppError::Client { code, .. }) => code.to_string(),
            Err(e) => format!("{e}"),
            Ok(_) => "accepted".into(),
        }
    }

    #[test]
    fn a_plain_archive_is_read() {
        let c = read(
            archive(&[
                ("pack.toml", MANIFEST),
                ("a.png", b"x"),
                ("__MACOSX/._a.png", b"y"),
                (".DS_Store", b"z"),
            ]),
            &ArchiveLimits::default(),
            120,
        )
        .unwrap();
        assert_eq!(c.files.len(), 1);
        assert_eq!(c.manifest.stickers[0].file, "a.png");
    }

    #[test]
    fn unsafe_and_exploding_archives_are_refused() {
        let l = ArchiveLimits::default();
        assert_eq!(
            code(read(archive(&[("../evil.png", b"x")]), &l, 120)),
            "archive_unsafe_path"
        );
        assert_eq!(
            code(read(archive(&[("/etc/passwd", b"x")]), &l, 120)),
            "archive_unsafe_path"
        );
        assert_eq!(
            code(read(archive(&[("a\\b.png", b"x")]), &l, 120)),
            "archive_unsafe_path"
        );
        assert_eq!(
            code(read(archive(&[("dir/a.png", b"x")]), &l, 120)),
            "archive_layout"
        );
        assert_eq!(
            code(read(archive(&[("A.png", b"x"), ("a.png", b"y")]), &l, 120)),
            "archive_duplicate_name"
        );
        assert_eq!(
            code(read(archive(&[("inner.zip", b"PK\x03\x04rest")]), &l, 120)),
            "archive_nested"
        );
        let zeros = vec![0u8; 1024 * 1024];
        assert_eq!(
            code(read(
                archive(&[("pack.toml", MANIFEST), ("a.png", &zeros)]),
                &l,
                120
            )),
            "archive_bomb"
        );
        let many: Vec<(String, Vec<u8>)> =
            (0..201).map(|i| (format!("{i}.png"), vec![1u8])).collect();
        let refs: Vec<(&str, &[u8])> = many
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        assert_eq!(
            code(read(archive(&refs), &l, 120)),
            "archive_too_many_entries"
        );
        assert_eq!(
            code(read(Cursor::new(b"not a zip".to_vec()), &l, 120)),
            "archive_corrupt"
        );
        assert_eq!(
            code(read(archive(&[("a.png", b"x")]), &l, 120)),
            "invalid_manifest"
        );
    }

    #[test]
    fn symbolic_links_are_refused() {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        w.add_symlink("a.png", "/etc/passwd", SimpleFileOptions::default())
            .unwrap();
        let c = Cursor::new(w.finish().unwrap().into_inner());
        assert_eq!(
            code(read(c, &ArchiveLimits::default(), 120)),
            "archive_unsafe_path"
        );
    }
}
