//! Intake of one sticker image uploaded by a creator: validate it, then re-encode it.
//!
//! What we serve is what we encoded: the uploaded bytes are never stored, only our PNG/APNG
//! encoding of the decoded pixels, so metadata chunks, bytes after the image and colour hidden
//! under transparent pixels never reach buyers. Sizes and frame counts are read from headers we
//! parse ourselves and refused before any decoding, so a decompression bomb costs a few reads.
//! What a decode holds is estimated from those headers too (`memory.rs`) and given to the
//! caller as `pixel_cost`: stills are read row by row, animations composited and re-encoded one
//! frame at a time.

use std::fmt;
use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};

use image::codecs::webp::WebPDecoder;
use image::{
    AnimationDecoder, Delay, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits, Rgba,
    RgbaImage,
};

#[cfg(test)]
mod frame_tests;
mod headers;
mod memory;
mod png_stream;
mod render;
mod resize;
#[cfg(test)]
mod tests;

use headers::*;
use png_stream::*;
use render::*;
use resize::*;

/// Limits a sticker must meet; the defaults are LINE Creators Market's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// Side of the square output canvas.
    pub canvas: u32,
    /// The source's longest side must be at least this.
    pub min_side: u32,
    /// Larger sources are refused from their headers, before decoding.
    pub max_source_side: u32,
    pub max_input_bytes: usize,
    /// Applies to our re-encoded output, not to the upload.
    pub max_static_bytes: usize,
    /// Applies to our re-encoded output, not to the upload.
    pub max_animated_bytes: usize,
    pub min_frames: u32,
    pub max_frames: u32,
    /// Longest total duration of one loop of an animation.
    pub max_duration_ms: u32,
    /// Side of the square static thumbnail of the first frame.
    pub thumbnail: u32,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            canvas: 512,
            min_side: 64,
            max_source_side: 4096,
            max_input_bytes: 4 * 1024 * 1024,
            max_static_bytes: 512 * 1024,
            max_animated_bytes: 300 * 1024,
            min_frames: 5,
            max_frames: 20,
            max_duration_ms: 4000,
            thumbnail: 128,
        }
    }
}

/// The kind of pack the sticker is uploaded to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Static,
    Animated,
}

/// Our re-encoding of an accepted sticker: the only bytes we store and serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// PNG (static) or APNG (animated), canvas×canvas RGBA.
    pub image: Vec<u8>,
    /// Static PNG, thumbnail×thumbnail, of the first frame.
    pub thumbnail: Vec<u8>,
    /// 1 for a static sticker.
    pub frames: u32,
    /// Total of one loop; 0 for a static sticker.
    pub duration_ms: u32,
}

/// Why an upload was refused: a stable machine-readable `code` and one human sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub detail: String,
}

impl Refusal {
    pub const EMPTY_FILE: &'static str = "empty_file";
    pub const FILE_TOO_LARGE: &'static str = "file_too_large";
    pub const UNSUPPORTED_FORMAT: &'static str = "unsupported_format";
    pub const IMAGE_CORRUPT: &'static str = "image_corrupt";
    pub const IMAGE_TOO_LARGE: &'static str = "image_too_large";
    pub const IMAGE_TOO_SMALL: &'static str = "image_too_small";
    pub const ANIMATED_NOT_ALLOWED: &'static str = "animated_not_allowed";
    pub const STATIC_NOT_ALLOWED: &'static str = "static_not_allowed";
    pub const TOO_MANY_FRAMES: &'static str = "too_many_frames";
    pub const TOO_FEW_FRAMES: &'static str = "too_few_frames";
    pub const ANIMATION_TOO_LONG: &'static str = "animation_too_long";
    pub const OPAQUE_BORDER: &'static str = "opaque_border";
    pub const OUTPUT_TOO_LARGE: &'static str = "output_too_large";

    fn new(code: &'static str, detail: impl Into<String>) -> Self {
        Refusal {
            code,
            detail: detail.into(),
        }
    }

    fn corrupt(detail: impl Into<String>) -> Self {
        Refusal::new(Refusal::IMAGE_CORRUPT, detail)
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

impl std::error::Error for Refusal {}

/// Detects the format from the bytes only; validates against `rules` for a pack of `kind`;
/// re-encodes. Pure CPU work: the caller runs it on a blocking thread.
pub fn check(bytes: &[u8], kind: Kind, rules: &Rules) -> Result<Encoded, Refusal> {
    if bytes.is_empty() {
        return Err(Refusal::new(Refusal::EMPTY_FILE, "the file is empty"));
    }
    if bytes.len() > rules.max_input_bytes {
        return Err(Refusal::new(
            Refusal::FILE_TOO_LARGE,
            format!(
                "the file is {}; at most {} can be uploaded",
                human_bytes(bytes.len()),
                human_bytes(rules.max_input_bytes)
            ),
        ));
    }
    let format = sniff(bytes)?;

    // Up to the decode below, only headers are read: no pixel is decoded yet.
    let (width, height) = canvas_size(format, bytes)
        .ok_or_else(|| Refusal::corrupt("the image header is missing or damaged"))?;
    check_side(width, height, rules, "image")?;
    if width.max(height) < rules.min_side {
        return Err(Refusal::new(
            Refusal::IMAGE_TOO_SMALL,
            format!(
                "image is {width}×{height} px; its longest side must be at least {} px",
                rules.min_side
            ),
        ));
    }
    let layout = layout(format, bytes).map_err(Refusal::corrupt)?;
    check_side(
        layout.largest_bitstream.0,
        layout.largest_bitstream.1,
        rules,
        "a frame inside the image",
    )?;
    match (kind, layout.animation) {
        (Kind::Static, Some(_)) => {
            return Err(Refusal::new(
                Refusal::ANIMATED_NOT_ALLOWED,
                "the image is animated; this pack takes static stickers",
            ))
        }
        (Kind::Animated, None) => {
            return Err(Refusal::new(
                Refusal::STATIC_NOT_ALLOWED,
                "the image is not animated; this pack takes animated stickers",
            ))
        }
        (Kind::Animated, Some(animation)) => {
            check_frame_count(animation.frames, rules)?;
            check_duration(animation.duration_ms, rules)?;
            // A still's decoder is held to the bound by `image` itself; an animation's buffers
            // are ours to weigh (the WebP decoder would allocate them unchecked).
            let bound = decode_limits(rules).max_alloc.unwrap_or(u64::MAX);
            if memory::estimate((width, height), &layout).decoder > bound {
                return Err(too_much_memory());
            }
        }
        (Kind::Static, None) => {}
    }

    // Decoders of untrusted input are where panics hide; one must refuse the upload, not take the
    // worker thread down. Everything the closure touches is owned by this call.
    catch_unwind(AssertUnwindSafe(|| match layout.animation {
        None => render_static(format, bytes, rules),
        Some(animation) => render_animation(format, bytes, animation.frames, rules),
    }))
    .map_err(|_| Refusal::corrupt("the image could not be decoded"))?
}

/// Memory the check of `bytes` will hold at its peak, in pixels of 4 bytes (what the caller's
/// pixel budget counts), estimated from the headers; None when they cannot be read. A still PNG
/// is read row by row: under 2 M at any size. A 20-frame 4096×4096 APNG costs about 18 M: its
/// frames are composited one at a time onto one canvas.
pub fn pixel_cost(bytes: &[u8]) -> Option<u64> {
    let format = sniff(bytes).ok()?;
    let size = canvas_size(format, bytes)?;
    let layout = layout(format, bytes).ok()?;
    Some(memory::estimate(size, &layout).total.div_ceil(4))
}

fn check_side(width: u32, height: u32, rules: &Rules, what: &str) -> Result<(), Refusal> {
    if width > rules.max_source_side || height > rules.max_source_side {
        return Err(Refusal::new(
            Refusal::IMAGE_TOO_LARGE,
            format!(
                "{what} is {width}×{height} px; at most {} px a side",
                rules.max_source_side
            ),
        ));
    }
    Ok(())
}

fn check_frame_count(frames: u32, rules: &Rules) -> Result<(), Refusal> {
    if frames > rules.max_frames {
        return Err(too_many_frames(frames.to_string(), rules));
    }
    if frames < rules.min_frames {
        return Err(Refusal::new(
            Refusal::TOO_FEW_FRAMES,
            format!(
                "the animation has {frames} frames; at least {} are needed",
                rules.min_frames
            ),
        ));
    }
    Ok(())
}

fn too_many_frames(count: String, rules: &Rules) -> Refusal {
    Refusal::new(
        Refusal::TOO_MANY_FRAMES,
        format!(
            "the animation has {count} frames; at most {} are allowed",
            rules.max_frames
        ),
    )
}

fn check_duration(duration_ms: u64, rules: &Rules) -> Result<(), Refusal> {
    if duration_ms > u64::from(rules.max_duration_ms) {
        return Err(Refusal::new(
            Refusal::ANIMATION_TOO_LONG,
            format!(
                "the animation lasts {duration_ms} ms; at most {} ms are allowed",
                rules.max_duration_ms
            ),
        ));
    }
    Ok(())
}
