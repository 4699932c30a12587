//! Intake of one sticker image uploaded by a creator: validate it, then re-encode it.
//!
//! What we serve is what we encoded: the uploaded bytes are never stored, only our PNG/APNG
//! encoding of the decoded pixels, so metadata chunks, bytes after the image and colour hidden
//! under transparent pixels never reach buyers. Sizes and frame counts are read from headers we
//! parse ourselves and refused before any decoding, so a decompression bomb costs a few reads.

use std::fmt;
use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};

use image::codecs::png::{CompressionType, FilterType as PngFilter, PngDecoder, PngEncoder};
use image::codecs::webp::WebPDecoder;
use image::imageops::{self, FilterType};
use image::{
    AnimationDecoder, Delay, ExtendedColorType, Frames, GenericImageView, ImageBuffer,
    ImageDecoder, ImageEncoder, ImageError, ImageFormat, ImageReader, Limits, Rgba, RgbaImage,
};

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
        }
        (Kind::Static, None) => {}
    }

    // Decoders of untrusted input are where panics hide; one must refuse the upload, not take the
    // worker thread down. Everything the closure touches is owned by this call.
    let frames = catch_unwind(AssertUnwindSafe(|| match kind {
        Kind::Static => render_static(format, bytes, rules),
        Kind::Animated => render_animation(format, bytes, rules),
    }))
    .map_err(|_| Refusal::corrupt("the image could not be decoded"))??;

    encode(&frames, kind, rules)
}

/// Pixels the decode of `bytes` will need (width*height*frames from the headers), so the caller
/// can weigh decode concurrency by pixels; None when the headers cannot be read.
pub fn pixel_cost(bytes: &[u8]) -> Option<u64> {
    let format = sniff(bytes).ok()?;
    let (width, height) = canvas_size(format, bytes)?;
    let frames = layout(format, bytes)
        .ok()?
        .animation
        .map_or(1, |animation| animation.frames);
    Some(u64::from(width) * u64::from(height) * u64::from(frames))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Png,
    WebP,
}

const PNG_SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";

fn sniff(bytes: &[u8]) -> Result<Format, Refusal> {
    if bytes.starts_with(PNG_SIGNATURE) {
        return Ok(Format::Png);
    }
    if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Ok(Format::WebP);
    }
    Err(Refusal::new(
        Refusal::UNSUPPORTED_FORMAT,
        format!(
            "the file is {}; stickers must be PNG, APNG or WebP",
            describe_unsupported(bytes)
        ),
    ))
}

/// Names a refused upload for the creator, from its first bytes.
fn describe_unsupported(bytes: &[u8]) -> &'static str {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(256)]).to_ascii_lowercase();
    let text = text.trim_start_matches('\u{feff}').trim_start();
    if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        "a JPEG image"
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        "a GIF image"
    } else if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        "an AVIF/HEIC image"
    } else if text.starts_with("<svg") || (text.starts_with("<?xml") && text.contains("<svg")) {
        "an SVG drawing"
    } else if text.starts_with('<') {
        "an HTML or XML document"
    } else {
        "not an image we recognise"
    }
}

/// The canvas size declared by the first header; None when it is missing or malformed.
fn canvas_size(format: Format, bytes: &[u8]) -> Option<(u32, u32)> {
    let size = match format {
        // The IHDR chunk must come first: length 13, then the big-endian width and height.
        Format::Png if be32(bytes, 8)? == 13 && bytes.get(12..16)? == b"IHDR" => {
            (be32(bytes, 16)?, be32(bytes, 20)?)
        }
        Format::Png => return None,
        Format::WebP => {
            let payload = bytes.get(20..)?;
            match bytes.get(12..16)? {
                b"VP8X" => (le24(payload, 4)? + 1, le24(payload, 7)? + 1),
                fourcc => bitstream_size(fourcc, payload)?,
            }
        }
    };
    (size.0 > 0 && size.1 > 0).then_some(size)
}

/// Width and height a VP8 (lossy) or VP8L (lossless) bitstream declares for itself.
fn bitstream_size(fourcc: &[u8], payload: &[u8]) -> Option<(u32, u32)> {
    match fourcc {
        b"VP8 " if payload.get(3..6)? == [0x9d, 0x01, 0x2a] => Some((
            u32::from(u16::from_le_bytes([*payload.get(6)?, *payload.get(7)?]) & 0x3fff),
            u32::from(u16::from_le_bytes([*payload.get(8)?, *payload.get(9)?]) & 0x3fff),
        )),
        b"VP8L" if *payload.first()? == 0x2f => {
            let bits = le32(payload, 1)?;
            Some(((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1))
        }
        _ => None,
    }
}

/// What the chunk structure promises, read without decompressing anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    /// The largest size any embedded bitstream declares. A WebP frame's bitstream is decoded at
    /// its own size before it is compared with the canvas, so it is a bomb of its own.
    largest_bitstream: (u32, u32),
    animation: Option<AnimationHeader>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AnimationHeader {
    frames: u32,
    duration_ms: u64,
}

/// Walks the chunks with bounds checks; Err is a sentence saying what is damaged.
fn layout(format: Format, bytes: &[u8]) -> Result<Layout, String> {
    let size = canvas_size(format, bytes).ok_or("the image header is missing or damaged")?;
    match format {
        Format::Png => png_layout(bytes, size),
        Format::WebP => webp_layout(bytes, size),
    }
}

fn png_layout(bytes: &[u8], size: (u32, u32)) -> Result<Layout, String> {
    let mut animation = None;
    let (mut seen_idat, mut duration_ms) = (false, 0u64);
    let mut offset = PNG_SIGNATURE.len();
    // Stops at IEND: whatever follows it is never read, and never re-served.
    while offset < bytes.len() {
        let length = be32(bytes, offset).ok_or("the file ends inside a chunk header")?;
        let kind = bytes
            .get(offset + 4..offset + 8)
            .ok_or("the file ends inside a chunk header")?;
        if length > i32::MAX as u32 || !kind.iter().all(u8::is_ascii_alphabetic) {
            return Err("a chunk header is damaged".into());
        }
        let data_start = offset + 8;
        let data = bytes
            .get(data_start..data_start + length as usize)
            .filter(|_| bytes.len() >= data_start + length as usize + 4)
            .ok_or("the file is truncated")?;
        match kind {
            b"acTL" if !seen_idat => {
                let frames = be32(data, 0).ok_or("the animation header is damaged")?;
                if frames == 0 {
                    return Err("the animation header declares no frames".into());
                }
                animation = Some(frames);
            }
            b"fcTL" => {
                let num = be16(data, 20).ok_or("a frame header is damaged")?;
                let den = be16(data, 22).ok_or("a frame header is damaged")?;
                duration_ms += u64::from(apng_delay_ms(num, den));
            }
            b"IDAT" => seen_idat = true,
            b"IEND" => break,
            _ => {}
        }
        offset = data_start + length as usize + 4;
    }
    Ok(Layout {
        largest_bitstream: size,
        animation: animation.map(|frames| AnimationHeader {
            frames,
            duration_ms,
        }),
    })
}

fn webp_layout(bytes: &[u8], canvas: (u32, u32)) -> Result<Layout, String> {
    let riff_end = le32(bytes, 4)
        .and_then(|size| 8usize.checked_add(size as usize))
        .filter(|&end| end <= bytes.len())
        .ok_or("the file is truncated")?;
    let body = bytes
        .get(12..riff_end)
        .ok_or("the RIFF header is damaged")?;
    let chunks = riff_chunks(body)?;
    let mut largest = canvas;
    let mut grow = |size: (u32, u32)| largest = (largest.0.max(size.0), largest.1.max(size.1));
    let (mut frames, mut duration_ms) = (0u32, 0u64);
    for (fourcc, payload) in &chunks {
        match fourcc {
            b"VP8 " | b"VP8L" => grow(
                bitstream_size(fourcc, payload).ok_or("the image bitstream header is damaged")?,
            ),
            b"ANMF" => {
                let damaged = || format!("animation frame {} is damaged", frames + 1);
                duration_ms += u64::from(le24(payload, 12).ok_or_else(damaged)?);
                let inner = riff_chunks(payload.get(16..).ok_or_else(damaged)?)?;
                let bitstream = inner
                    .iter()
                    .find(|(fourcc, _)| matches!(fourcc, b"VP8 " | b"VP8L"))
                    .and_then(|(fourcc, payload)| bitstream_size(fourcc, payload))
                    .ok_or_else(damaged)?;
                grow(bitstream);
                frames += 1;
            }
            _ => {}
        }
    }
    let animated =
        bytes.get(12..16) == Some(b"VP8X") && bytes.get(20).is_some_and(|f| f & 0x02 != 0);
    if animated && frames == 0 {
        return Err("the animation has no frames".into());
    }
    Ok(Layout {
        largest_bitstream: largest,
        animation: animated.then_some(AnimationHeader {
            frames,
            duration_ms,
        }),
    })
}

/// A RIFF chunk's fourcc and payload.
type RiffChunk<'a> = ([u8; 4], &'a [u8]);

/// Splits RIFF chunks (fourcc, little-endian length, payload padded to even) with bounds checks.
fn riff_chunks(mut rest: &[u8]) -> Result<Vec<RiffChunk<'_>>, String> {
    let mut chunks = Vec::new();
    while !rest.is_empty() {
        let length = le32(rest, 4).ok_or("the file ends inside a chunk header")? as usize;
        let payload = rest.get(8..8 + length).ok_or("the file is truncated")?;
        let fourcc = [rest[0], rest[1], rest[2], rest[3]];
        chunks.push((fourcc, payload));
        rest = rest.get(8 + length + length % 2..).unwrap_or_default();
    }
    Ok(chunks)
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

/// Normalized frames ready to encode: canvas×canvas RGBA8, with each frame's delay.
struct Rendered {
    frames: Vec<(RgbaImage, u32)>,
}

/// Decoder memory bound: the largest allowed source as 16-bit RGBA, and never under 64 MiB.
fn decode_limits(rules: &Rules) -> Limits {
    let side = u64::from(rules.max_source_side);
    let mut limits = Limits::default();
    limits.max_image_width = Some(rules.max_source_side);
    limits.max_image_height = Some(rules.max_source_side);
    limits.max_alloc = Some((side * side * 8).max(64 * 1024 * 1024));
    limits
}

fn render_static(format: Format, bytes: &[u8], rules: &Rules) -> Result<Rendered, Refusal> {
    let image_format = match format {
        Format::Png => ImageFormat::Png,
        Format::WebP => ImageFormat::WebP,
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), image_format);
    reader.limits(decode_limits(rules));
    let source = reader.decode().map_err(decode_refusal)?.into_rgba8();
    let frame = fit_to_canvas(&source, rules.canvas);
    check_border(&frame, None)?;
    Ok(Rendered {
        frames: vec![(frame, 0)],
    })
}

fn render_animation(format: Format, bytes: &[u8], rules: &Rules) -> Result<Rendered, Refusal> {
    let stream: Frames<'_> = match format {
        Format::Png => PngDecoder::with_limits(Cursor::new(bytes), decode_limits(rules))
            .and_then(|decoder| decoder.apng())
            .map_err(decode_refusal)?
            .into_frames(),
        Format::WebP => {
            let mut decoder = WebPDecoder::new(Cursor::new(bytes)).map_err(decode_refusal)?;
            decoder
                .set_limits(decode_limits(rules))
                .map_err(decode_refusal)?;
            decoder.into_frames()
        }
    };
    let mut frames = Vec::new();
    let mut duration_ms = 0u64;
    // The headers were counted already; the stream is still held to the limit itself, and at
    // most max_frames normalized frames are ever held.
    for (index, frame) in stream.enumerate() {
        if frames.len() as u32 >= rules.max_frames {
            return Err(too_many_frames(
                format!("more than {}", rules.max_frames),
                rules,
            ));
        }
        let frame = frame.map_err(decode_refusal)?;
        let delay = delay_ms(frame.delay());
        duration_ms += u64::from(delay);
        check_duration(duration_ms, rules)?;
        // Both decoders yield whole composited canvases at (0, 0).
        let normalized = fit_to_canvas(frame.buffer(), rules.canvas);
        check_border(&normalized, Some(index))?;
        frames.push((normalized, delay));
    }
    check_frame_count(frames.len() as u32, rules)?;
    Ok(Rendered { frames })
}

fn decode_refusal(error: ImageError) -> Refusal {
    match error {
        ImageError::Limits(_) => Refusal::new(
            Refusal::IMAGE_TOO_LARGE,
            "decoding the image would need more memory than we allow for one sticker",
        ),
        ImageError::Unsupported(cause) => Refusal::new(
            Refusal::UNSUPPORTED_FORMAT,
            format!("the image uses a feature we cannot read ({cause})"),
        ),
        cause => Refusal::corrupt(format!("the image could not be decoded ({cause})")),
    }
}

/// APNG frame delay in whole milliseconds; a denominator of 0 means 1/100 s.
fn apng_delay_ms(num: u16, den: u16) -> u32 {
    let den = if den == 0 { 100 } else { u32::from(den) };
    (u32::from(num) * 1000 + den / 2) / den
}

fn delay_ms(delay: Delay) -> u32 {
    let (num, den) = delay.numer_denom_ms();
    if den == 0 {
        return 0;
    }
    u32::try_from((u64::from(num) + u64::from(den / 2)) / u64::from(den)).unwrap_or(u32::MAX)
}

/// Scales `source` down to fit inside the canvas (never up) and centres it on a transparent
/// canvas×canvas image.
fn fit_to_canvas(source: &RgbaImage, canvas: u32) -> RgbaImage {
    let (width, height) = source.dimensions();
    let longest = u64::from(width.max(height));
    let fitted = |side: u32| {
        if longest <= u64::from(canvas) {
            side
        } else {
            // Rounded, and at least 1 px so a 4096×1 sliver stays visible.
            let scaled = (u64::from(side) * u64::from(canvas) + longest / 2) / longest;
            u32::try_from(scaled).unwrap_or(canvas).max(1)
        }
    };
    let (new_width, new_height) = (fitted(width), fitted(height));
    let mut out = RgbaImage::new(canvas, canvas);
    let (x, y) = (
        i64::from((canvas - new_width) / 2),
        i64::from((canvas - new_height) / 2),
    );
    if (new_width, new_height) == (width, height) {
        imageops::replace(&mut out, source, x, y);
    } else {
        imageops::replace(
            &mut out,
            &resize_premultiplied(source, new_width, new_height),
            x,
            y,
        );
    }
    clear_hidden_colour(&mut out);
    out
}

/// A read-only view of an RGBA8 image with premultiplied alpha in 16 bits, so a resize needs no
/// premultiplied copy of a large source. Values use half the 16-bit range: the filter overshoots
/// near hard edges, and if alpha were clamped where colour is not, edges would be tinted.
struct Premultiplied<'a>(&'a RgbaImage);

impl GenericImageView for Premultiplied<'_> {
    type Pixel = Rgba<u16>;

    fn dimensions(&self) -> (u32, u32) {
        self.0.dimensions()
    }

    fn get_pixel(&self, x: u32, y: u32) -> Rgba<u16> {
        let [r, g, b, a] = self.0.get_pixel(x, y).0.map(u16::from);
        // colour × alpha / 2 and alpha × 128: at most 32 512 and 32 640.
        Rgba([r * a / 2, g * a / 2, b * a / 2, a * 128])
    }
}

/// Resizes with premultiplied alpha, so transparent pixels' colour cannot bleed into the edges
/// as a dark or coloured halo.
fn resize_premultiplied(source: &RgbaImage, width: u32, height: u32) -> RgbaImage {
    let view = Premultiplied(source);
    unpremultiply(&imageops::resize(
        &view,
        width,
        height,
        FilterType::CatmullRom,
    ))
}

/// Thumbnail by area averaging, with premultiplied alpha: softer than `resize_premultiplied`,
/// and several times cheaper, which is all a thumbnail needs.
fn thumbnail(frame: &RgbaImage, side: u32) -> RgbaImage {
    unpremultiply(&imageops::thumbnail(&Premultiplied(frame), side, side))
}

fn unpremultiply(premultiplied: &ImageBuffer<Rgba<u16>, Vec<u16>>) -> RgbaImage {
    let mut out = RgbaImage::new(premultiplied.width(), premultiplied.height());
    for (target, pixel) in out.pixels_mut().zip(premultiplied.pixels()) {
        let [r, g, b, a] = pixel.0.map(u32::from);
        let alpha = ((a + 64) / 128).min(255);
        if alpha == 0 {
            continue;
        }
        let colour = |c: u32| ((c * 256 + a / 2) / a).min(255) as u8;
        *target = Rgba([colour(r), colour(g), colour(b), alpha as u8]);
    }
    out
}

/// Zeroes the colour of fully transparent pixels: invisible, yet a channel for hidden data.
fn clear_hidden_colour(image: &mut RgbaImage) {
    for pixel in image.pixels_mut().filter(|pixel| pixel[3] == 0) {
        *pixel = Rgba([0, 0, 0, 0]);
    }
}

/// The outermost 1-px ring of the canvas must be fully transparent: a sticker keeps a margin.
fn check_border(frame: &RgbaImage, index: Option<usize>) -> Result<(), Refusal> {
    let (width, height) = frame.dimensions();
    let (right, bottom) = (width.saturating_sub(1), height.saturating_sub(1));
    let ring = (0..width)
        .flat_map(|x| [(x, 0), (x, bottom)])
        .chain((0..height).flat_map(|y| [(0, y), (right, y)]));
    let touching = ring
        .into_iter()
        .find(|&(x, y)| frame.get_pixel(x, y)[3] != 0);
    match touching {
        None => Ok(()),
        Some((x, y)) => {
            let what = index.map_or("the sticker".to_owned(), |i| format!("frame {}", i + 1));
            Err(Refusal::new(
                Refusal::OPAQUE_BORDER,
                format!(
                    "{what} touches the edge of the {width}×{height} canvas at ({x}, {y}); \
                     leave a transparent margin of at least 1 px"
                ),
            ))
        }
    }
}

fn encode(rendered: &Rendered, kind: Kind, rules: &Rules) -> Result<Encoded, Refusal> {
    let Some((first, _)) = rendered.frames.first() else {
        return Err(Refusal::corrupt("the image has no frames"));
    };
    let (image, limit) = match kind {
        Kind::Static => (encode_png(first)?, rules.max_static_bytes),
        Kind::Animated => (
            encode_apng(&rendered.frames).map_err(|_| encode_failure())?,
            rules.max_animated_bytes,
        ),
    };
    if image.len() > limit {
        return Err(Refusal::new(
            Refusal::OUTPUT_TOO_LARGE,
            format!(
                "the re-encoded sticker is {}; at most {} is allowed, so simplify the artwork",
                human_bytes(image.len()),
                human_bytes(limit)
            ),
        ));
    }
    let thumbnail = encode_png(&thumbnail(first, rules.thumbnail))?;
    let duration_ms = rendered.frames.iter().map(|(_, delay)| delay).sum();
    Ok(Encoded {
        image,
        thumbnail,
        frames: rendered.frames.len() as u32,
        duration_ms,
    })
}

/// Writing into a Vec cannot fail short of running out of memory; kept as a refusal all the same.
fn encode_failure() -> Refusal {
    Refusal::corrupt("the image could not be re-encoded")
}

/// A plain PNG: the encoder writes IHDR, IDAT and IEND and no metadata chunk.
fn encode_png(image: &RgbaImage) -> Result<Vec<u8>, Refusal> {
    let mut out = Vec::new();
    PngEncoder::new_with_quality(&mut out, CompressionType::Best, PngFilter::Adaptive)
        .write_image(
            image.as_raw(),
            image.width(),
            image.height(),
            ExtendedColorType::Rgba8,
        )
        .map_err(|_| encode_failure())?;
    Ok(out)
}

/// Full-canvas frames, each replacing the last (blend Source, dispose None), looping forever.
/// The first frame is the IDAT image, so viewers without APNG show it as the preview.
fn encode_apng(frames: &[(RgbaImage, u32)]) -> Result<Vec<u8>, png::EncodingError> {
    let (width, height) = frames
        .first()
        .map_or((1, 1), |(frame, _)| frame.dimensions());
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::High);
    encoder.validate_sequence(true);
    encoder.set_animated(frames.len() as u32, 0)?;
    encoder.set_dispose_op(png::DisposeOp::None)?;
    encoder.set_blend_op(png::BlendOp::Source)?;
    let mut writer = encoder.write_header()?;
    for (frame, delay) in frames {
        let (num, den) = match u16::try_from(*delay) {
            Ok(ms) => (ms, 1000),
            Err(_) => (u16::try_from(delay / 10).unwrap_or(u16::MAX), 100),
        };
        writer.set_frame_delay(num, den)?;
        writer.write_image_data(frame.as_raw())?;
    }
    writer.finish()?;
    Ok(out)
}

fn human_bytes(bytes: usize) -> String {
    const KIB: f64 = 1024.0;
    let value = bytes as f64;
    let (amount, unit) = if value >= KIB * KIB {
        (value / (KIB * KIB), "MiB")
    } else if value >= KIB {
        (value / KIB, "KiB")
    } else {
        return format!("{bytes} bytes");
    };
    let text = format!("{amount:.1}");
    format!("{} {unit}", text.strip_suffix(".0").unwrap_or(&text))
}

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn le24(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 3)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], 0]))
}

fn le32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::codecs::webp::WebPEncoder;
    use image::DynamicImage;

    const RED: Rgba<u8> = Rgba([220, 30, 40, 255]);
    const CLEAR: Rgba<u8> = Rgba([0, 0, 0, 0]);

    /// An opaque red rectangle, shifted right by `shift` px, inside a transparent margin of an
    /// eighth of each side.
    fn sticker_shifted(width: u32, height: u32, shift: u32) -> RgbaImage {
        let (mx, my) = (width / 8, height / 8);
        RgbaImage::from_fn(width, height, |x, y| {
            let inside = x >= mx + shift && x < width - mx && y >= my && y < height - my;
            if inside {
                RED
            } else {
                CLEAR
            }
        })
    }

    fn sticker(width: u32, height: u32) -> RgbaImage {
        sticker_shifted(width, height, 0)
    }

    fn png_of(image: &RgbaImage) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    fn apng_of(frames: u32, width: u32, height: u32, delay: (u16, u16)) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_animated(frames, 0).unwrap();
        encoder.set_frame_delay(delay.0, delay.1).unwrap();
        let mut writer = encoder.write_header().unwrap();
        for i in 0..frames {
            let frame = sticker_shifted(width, height, i);
            writer.write_image_data(frame.as_raw()).unwrap();
        }
        writer.finish().unwrap();
        out
    }

    fn webp_of(image: &RgbaImage) -> Vec<u8> {
        let mut out = Vec::new();
        WebPEncoder::new_lossless(&mut out)
            .encode(
                image.as_raw(),
                image.width(),
                image.height(),
                ExtendedColorType::Rgba8,
            )
            .unwrap();
        out
    }

    fn riff_chunk(fourcc: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut out = fourcc.to_vec();
        out.extend((payload.len() as u32).to_le_bytes());
        out.extend(payload);
        if payload.len() % 2 == 1 {
            out.push(0);
        }
        out
    }

    fn le24_bytes(value: u32) -> [u8; 3] {
        let [a, b, c, _] = value.to_le_bytes();
        [a, b, c]
    }

    fn riff(chunks: &[Vec<u8>]) -> Vec<u8> {
        let body = [b"WEBP".to_vec(), chunks.concat()].concat();
        [
            b"RIFF".to_vec(),
            (body.len() as u32).to_le_bytes().to_vec(),
            body,
        ]
        .concat()
    }

    fn vp8x(flags: u8, width: u32, height: u32) -> Vec<u8> {
        let mut payload = vec![flags, 0, 0, 0];
        payload.extend(le24_bytes(width - 1));
        payload.extend(le24_bytes(height - 1));
        riff_chunk(b"VP8X", &payload)
    }

    /// An animated WebP of full-canvas lossless frames (the image crate cannot write one).
    fn animated_webp_of(frames: u32, width: u32, height: u32, delay_ms: u32) -> Vec<u8> {
        let mut chunks = vec![vp8x(0x12, width, height), riff_chunk(b"ANIM", &[0; 6])];
        for i in 0..frames {
            let still = webp_of(&sticker_shifted(width, height, i));
            assert_eq!(&still[12..16], b"VP8L");
            let mut anmf = vec![0; 6];
            anmf.extend(le24_bytes(width - 1));
            anmf.extend(le24_bytes(height - 1));
            anmf.extend(le24_bytes(delay_ms));
            anmf.push(0b10); // no blending: each frame replaces the canvas
            anmf.extend(&still[12..]);
            chunks.push(riff_chunk(b"ANMF", &anmf));
        }
        riff(&chunks)
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let covered = [kind.as_slice(), data].concat();
        [
            (data.len() as u32).to_be_bytes().as_slice(),
            &covered,
            &crc32(&covered).to_be_bytes(),
        ]
        .concat()
    }

    fn ihdr(width: u32, height: u32, interlace: u8) -> Vec<u8> {
        let data = [width.to_be_bytes(), height.to_be_bytes()].concat();
        png_chunk(
            b"IHDR",
            &[data.as_slice(), &[8, 6, 0, 0, interlace]].concat(),
        )
    }

    /// Chunk types of a PNG, in order, up to and including IEND.
    fn chunk_types(png: &[u8]) -> Vec<[u8; 4]> {
        let mut types = Vec::new();
        let mut offset = 8;
        while offset + 8 <= png.len() {
            let length = be32(png, offset).unwrap() as usize;
            let kind: [u8; 4] = png[offset + 4..offset + 8].try_into().unwrap();
            types.push(kind);
            offset += 12 + length;
            if &kind == b"IEND" {
                break;
            }
        }
        types
    }

    /// Inserts `chunk` before the first chunk of type `before`.
    fn insert_before(png: &[u8], before: &[u8; 4], chunk: &[u8]) -> Vec<u8> {
        let at = png.windows(4).position(|w| w == before).unwrap() - 4;
        [&png[..at], chunk, &png[at..]].concat()
    }

    /// Zlib stream of stored (uncompressed) deflate blocks.
    fn zlib_stored(data: &[u8]) -> Vec<u8> {
        let mut out = vec![0x78, 0x01];
        let blocks: Vec<&[u8]> = data.chunks(65_535).collect();
        for (i, block) in blocks.iter().enumerate() {
            let length = block.len() as u16;
            out.push(u8::from(i + 1 == blocks.len()));
            out.extend(length.to_le_bytes());
            out.extend((!length).to_le_bytes());
            out.extend(*block);
        }
        let (mut a, mut b) = (1u32, 0u32);
        for &byte in data {
            a = (a + u32::from(byte)) % 65_521;
            b = (b + a) % 65_521;
        }
        out.extend(((b << 16) | a).to_be_bytes());
        out
    }

    /// An Adam7-interlaced RGBA PNG, written by hand: the png crate only writes progressive.
    fn interlaced_png_of(image: &RgbaImage) -> Vec<u8> {
        const PASSES: [(u32, u32, usize, usize); 7] = [
            (0, 0, 8, 8),
            (4, 0, 8, 8),
            (0, 4, 4, 8),
            (2, 0, 4, 4),
            (0, 2, 2, 4),
            (1, 0, 2, 2),
            (0, 1, 1, 2),
        ];
        let (width, height) = image.dimensions();
        let mut raw = Vec::new();
        for (x0, y0, dx, dy) in PASSES.into_iter().filter(|p| p.0 < width && p.1 < height) {
            for y in (y0..height).step_by(dy) {
                raw.push(0); // filter: none
                for x in (x0..width).step_by(dx) {
                    raw.extend(image.get_pixel(x, y).0);
                }
            }
        }
        [
            PNG_SIGNATURE.to_vec(),
            ihdr(width, height, 1),
            png_chunk(b"IDAT", &zlib_stored(&raw)),
            png_chunk(b"IEND", &[]),
        ]
        .concat()
    }

    fn accepted(bytes: &[u8], kind: Kind) -> Encoded {
        check(bytes, kind, &Rules::default()).unwrap_or_else(|refusal| panic!("{refusal}"))
    }

    fn refusal(bytes: &[u8], kind: Kind) -> Refusal {
        check(bytes, kind, &Rules::default()).unwrap_err()
    }

    fn decoded(png: &[u8]) -> RgbaImage {
        image::load_from_memory_with_format(png, ImageFormat::Png)
            .unwrap()
            .into_rgba8()
    }

    fn decoded_frames(apng: &[u8]) -> Vec<RgbaImage> {
        let decoder = PngDecoder::new(Cursor::new(apng)).unwrap();
        let frames = decoder.apng().unwrap().into_frames().collect_frames();
        frames
            .unwrap()
            .into_iter()
            .map(|f| f.into_buffer())
            .collect()
    }

    /// `source` pasted unscaled at the centre of a transparent 512×512 canvas.
    fn centred(source: &RgbaImage) -> RgbaImage {
        let mut canvas = RgbaImage::new(512, 512);
        let x = (512 - source.width()) / 2;
        let y = (512 - source.height()) / 2;
        imageops::replace(&mut canvas, source, i64::from(x), i64::from(y));
        canvas
    }

    #[test]
    fn static_sticker_is_centred_unscaled_on_a_transparent_canvas() {
        let source = sticker(400, 300);

        let encoded = accepted(&png_of(&source), Kind::Static);

        assert_eq!(decoded(&encoded.image), centred(&source));
        assert_eq!((encoded.frames, encoded.duration_ms), (1, 0));
        let thumbnail = decoded(&encoded.thumbnail);
        assert_eq!(thumbnail.dimensions(), (128, 128));
        assert_eq!(*thumbnail.get_pixel(64, 64), RED);
        assert_eq!(*thumbnail.get_pixel(0, 0), CLEAR);
    }

    #[test]
    fn larger_source_is_scaled_to_fit_without_dark_halos() {
        // The transparent pixels hide black: a resize without premultiplied alpha darkens edges.
        let source = sticker(800, 600);

        let image = decoded(&accepted(&png_of(&source), Kind::Static).image);

        // 800×600 fits as 512×384, centred: rows above 64 and below 448 stay empty.
        for (x, y, pixel) in image.enumerate_pixels() {
            if !(64..448).contains(&y) {
                assert_eq!(*pixel, CLEAR, "({x}, {y})");
            } else if pixel[3] > 0 {
                let [r, g, b, _] = pixel.0;
                assert!(
                    r.abs_diff(220) <= 2 && g.abs_diff(30) <= 2 && b.abs_diff(40) <= 2,
                    "({x}, {y}) {pixel:?}"
                );
            }
        }
        assert_eq!(*image.get_pixel(256, 256), RED);
    }

    #[test]
    fn colour_hidden_under_transparent_pixels_is_not_re_served() {
        let mut source = sticker(200, 200);
        source.put_pixel(3, 3, Rgba([10, 20, 30, 0]));

        let image = decoded(&accepted(&png_of(&source), Kind::Static).image);

        assert!(image.pixels().filter(|p| p[3] == 0).all(|p| *p == CLEAR));
    }

    #[test]
    fn sixteen_bit_png_gives_the_same_sticker_as_eight_bit() {
        let source = sticker(400, 300);
        let wide = DynamicImage::ImageRgba8(source.clone()).into_rgba16();
        let mut png16 = Cursor::new(Vec::new());
        wide.write_to(&mut png16, ImageFormat::Png).unwrap();

        let encoded = accepted(png16.get_ref(), Kind::Static);

        assert_eq!(
            encoded.image,
            accepted(&png_of(&source), Kind::Static).image
        );
    }

    #[test]
    fn palette_png_with_trns_gives_the_same_sticker_as_rgba() {
        let source = sticker(400, 300);
        let indices: Vec<u8> = source.pixels().map(|p| u8::from(*p == RED)).collect();
        let mut palette_png = Vec::new();
        let mut encoder = png::Encoder::new(&mut palette_png, 400, 300);
        encoder.set_color(png::ColorType::Indexed);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_palette(vec![0, 0, 0, 220, 30, 40]);
        encoder.set_trns(vec![0, 255]);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&indices).unwrap();
        writer.finish().unwrap();

        let encoded = accepted(&palette_png, Kind::Static);

        assert_eq!(
            encoded.image,
            accepted(&png_of(&source), Kind::Static).image
        );
    }

    #[test]
    fn interlaced_png_gives_the_same_sticker_as_progressive() {
        let source = sticker_shifted(203, 101, 7);

        let encoded = accepted(&interlaced_png_of(&source), Kind::Static);

        assert_eq!(
            encoded.image,
            accepted(&png_of(&source), Kind::Static).image
        );
    }

    #[test]
    fn grayscale_png_becomes_rgba() {
        let gray = image::GrayImage::from_pixel(300, 200, image::Luma([128]));
        let mut png = Cursor::new(Vec::new());
        gray.write_to(&mut png, ImageFormat::Png).unwrap();

        let image = decoded(&accepted(png.get_ref(), Kind::Static).image);

        assert_eq!(*image.get_pixel(256, 256), Rgba([128, 128, 128, 255]));
        assert_eq!(*image.get_pixel(105, 255), CLEAR);
    }

    #[test]
    fn lossless_webp_gives_the_same_sticker_as_png() {
        let source = sticker(400, 300);

        let encoded = accepted(&webp_of(&source), Kind::Static);

        assert_eq!(
            encoded.image,
            accepted(&png_of(&source), Kind::Static).image
        );
    }

    #[test]
    fn apng_of_six_frames_is_re_encoded_as_an_apng_of_full_canvas_frames() {
        let apng = apng_of(6, 100, 80, (1, 10));

        let encoded = accepted(&apng, Kind::Animated);

        assert_eq!((encoded.frames, encoded.duration_ms), (6, 600));
        let types = chunk_types(&encoded.image);
        assert!(types.contains(b"acTL"));
        let frames = decoded_frames(&encoded.image);
        assert_eq!(frames.len(), 6);
        for (i, frame) in frames.iter().enumerate() {
            assert_eq!(
                *frame,
                centred(&sticker_shifted(100, 80, i as u32)),
                "frame {i}"
            );
        }
        assert_eq!(*decoded(&encoded.thumbnail).get_pixel(64, 64), RED);
    }

    #[test]
    fn animated_webp_gives_the_same_sticker_as_apng() {
        let webp = animated_webp_of(6, 100, 80, 100);

        let encoded = accepted(&webp, Kind::Animated);

        assert_eq!((encoded.frames, encoded.duration_ms), (6, 600));
        assert_eq!(
            encoded,
            accepted(&apng_of(6, 100, 80, (1, 10)), Kind::Animated)
        );
        assert_eq!(pixel_cost(&webp), Some(100 * 80 * 6));
    }

    #[test]
    fn animated_images_are_refused_in_a_static_pack() {
        let apng = apng_of(6, 100, 80, (1, 10));
        let webp = animated_webp_of(6, 100, 80, 100);

        assert_eq!(
            refusal(&apng, Kind::Static).code,
            Refusal::ANIMATED_NOT_ALLOWED
        );
        assert_eq!(
            refusal(&webp, Kind::Static).code,
            Refusal::ANIMATED_NOT_ALLOWED
        );
    }

    #[test]
    fn static_images_are_refused_in_an_animated_pack() {
        let source = sticker(400, 300);

        assert_eq!(
            refusal(&png_of(&source), Kind::Animated).code,
            Refusal::STATIC_NOT_ALLOWED
        );
        assert_eq!(
            refusal(&webp_of(&source), Kind::Animated).code,
            Refusal::STATIC_NOT_ALLOWED
        );
    }

    #[test]
    fn twenty_five_frames_are_too_many() {
        let refused = refusal(&apng_of(25, 80, 80, (1, 10)), Kind::Animated);

        assert_eq!(refused.code, Refusal::TOO_MANY_FRAMES);
        assert_eq!(
            refused.detail,
            "the animation has 25 frames; at most 20 are allowed"
        );
    }

    #[test]
    fn frame_count_is_read_from_the_header_before_decoding() {
        // A static PNG with an acTL claiming 25 frames and no frame data at all.
        let png = png_of(&sticker(100, 100));
        let actl = png_chunk(b"acTL", &[0, 0, 0, 25, 0, 0, 0, 0]);

        let refused = refusal(&insert_before(&png, b"IDAT", &actl), Kind::Animated);

        assert_eq!(refused.code, Refusal::TOO_MANY_FRAMES);
    }

    #[test]
    fn three_frames_are_too_few() {
        assert_eq!(
            refusal(&apng_of(3, 80, 80, (1, 10)), Kind::Animated).code,
            Refusal::TOO_FEW_FRAMES
        );
        assert_eq!(
            refusal(&animated_webp_of(3, 80, 80, 100), Kind::Animated).code,
            Refusal::TOO_FEW_FRAMES
        );
    }

    #[test]
    fn animation_over_four_seconds_is_too_long() {
        let refused = refusal(&apng_of(6, 80, 80, (1, 1)), Kind::Animated);

        assert_eq!(refused.code, Refusal::ANIMATION_TOO_LONG);
        assert_eq!(
            refused.detail,
            "the animation lasts 6000 ms; at most 4000 ms are allowed"
        );
    }

    #[test]
    fn apng_delay_with_zero_denominator_is_in_hundredths() {
        let encoded = accepted(&apng_of(6, 80, 80, (50, 0)), Kind::Animated);

        assert_eq!(encoded.duration_ms, 3000);
    }

    #[test]
    fn oversized_png_is_refused_from_its_header_before_decoding() {
        // 5000×10 with a truncated IDAT: only the header can be read, and it is enough.
        let idat = png_chunk(b"IDAT", &[0x78, 0x01, 0, 0, 0, 0, 0, 0]);
        let png = [
            PNG_SIGNATURE.to_vec(),
            ihdr(5000, 10, 0),
            idat[..10].to_vec(),
        ]
        .concat();

        let refused = refusal(&png, Kind::Static);

        assert_eq!(refused.code, Refusal::IMAGE_TOO_LARGE);
        assert_eq!(
            refused.detail,
            "image is 5000×10 px; at most 4096 px a side"
        );
    }

    #[test]
    fn oversized_webp_is_refused_from_its_header() {
        let extended = riff(&[vp8x(0x10, 5000, 100)]);
        let lossless = riff(&[riff_chunk(b"VP8L", &[0x2f, 0x87, 0x53, 0x02, 0x00])]);
        let size = [5000u16.to_le_bytes(), 10u16.to_le_bytes()].concat();
        let lossy_header = [[0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a].as_slice(), &size].concat();
        let lossy = riff(&[riff_chunk(b"VP8 ", &lossy_header)]);

        for webp in [extended, lossless, lossy] {
            let refused = refusal(&webp, Kind::Static);
            assert_eq!(refused.code, Refusal::IMAGE_TOO_LARGE, "{}", refused.detail);
        }
    }

    #[test]
    fn webp_bitstream_larger_than_its_canvas_is_refused_before_decoding() {
        // A 100×100 canvas whose lossless bitstream declares 8000×8000.
        let bits: u32 = 7999 | (7999 << 14);
        let vp8l = [[0x2f].as_slice(), &bits.to_le_bytes()].concat();
        let webp = riff(&[vp8x(0x10, 100, 100), riff_chunk(b"VP8L", &vp8l)]);

        let refused = refusal(&webp, Kind::Static);

        assert_eq!(refused.code, Refusal::IMAGE_TOO_LARGE);
        assert!(refused.detail.contains("8000×8000"), "{}", refused.detail);
    }

    #[test]
    fn image_with_longest_side_under_64_px_is_too_small() {
        assert_eq!(
            refusal(&png_of(&sticker(50, 40)), Kind::Static).code,
            Refusal::IMAGE_TOO_SMALL
        );
    }

    #[test]
    fn artwork_touching_the_canvas_edge_is_refused() {
        let opaque = RgbaImage::from_pixel(512, 512, RED);

        let refused = refusal(&png_of(&opaque), Kind::Static);

        assert_eq!(refused.code, Refusal::OPAQUE_BORDER);
        assert!(refused.detail.contains("(0, 0)"), "{}", refused.detail);
    }

    #[test]
    fn animation_frame_touching_the_canvas_edge_is_refused() {
        // 512 px wide: the rectangle of frame 4 and later is cut by the right edge.
        let mut frames = Vec::new();
        let mut encoder = png::Encoder::new(&mut frames, 512, 100);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_animated(6, 0).unwrap();
        let mut writer = encoder.write_header().unwrap();
        for i in 0..6 {
            let mut frame = sticker(512, 100);
            if i == 3 {
                frame.put_pixel(511, 50, RED);
            }
            writer.write_image_data(frame.as_raw()).unwrap();
        }
        writer.finish().unwrap();

        let refused = refusal(&frames, Kind::Animated);

        assert_eq!(refused.code, Refusal::OPAQUE_BORDER);
        assert!(refused.detail.starts_with("frame 4 "), "{}", refused.detail);
    }

    #[test]
    fn other_formats_and_documents_are_unsupported() {
        let uploads: [&[u8]; 5] = [
            b"\xff\xd8\xff\xe0\0\x10JFIF",
            b"GIF89a\x01\0\x01\0",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
            b"<!DOCTYPE html><html></html>",
            b"just some text",
        ];
        for upload in uploads {
            assert_eq!(
                refusal(upload, Kind::Static).code,
                Refusal::UNSUPPORTED_FORMAT
            );
        }
        assert!(refusal(uploads[0], Kind::Static).detail.contains("JPEG"));
        assert!(refusal(uploads[2], Kind::Static).detail.contains("SVG"));
    }

    #[test]
    fn empty_and_oversized_files_are_refused_before_sniffing() {
        let rules = Rules {
            max_input_bytes: 100,
            ..Rules::default()
        };

        assert_eq!(refusal(b"", Kind::Static).code, Refusal::EMPTY_FILE);
        let too_large = check(&png_of(&sticker(100, 100)), Kind::Static, &rules).unwrap_err();
        assert_eq!(too_large.code, Refusal::FILE_TOO_LARGE);
    }

    #[test]
    fn truncated_or_damaged_png_is_corrupt() {
        let png = png_of(&sticker(400, 300));
        let mut bad_crc = png.clone();
        let idat = bad_crc.windows(4).position(|w| w == b"IDAT").unwrap();
        bad_crc[idat + 10] ^= 0xff;

        assert_eq!(
            refusal(&png[..png.len() / 2], Kind::Static).code,
            Refusal::IMAGE_CORRUPT
        );
        assert_eq!(refusal(&bad_crc, Kind::Static).code, Refusal::IMAGE_CORRUPT);
        assert_eq!(
            refusal(&png[..20], Kind::Static).code,
            Refusal::IMAGE_CORRUPT
        );
    }

    #[test]
    fn damaged_webp_is_corrupt() {
        let webp = webp_of(&sticker(400, 300));
        let mut short_riff = webp.clone();
        short_riff[4..8].copy_from_slice(&0u32.to_le_bytes());

        assert_eq!(
            refusal(&webp[..webp.len() / 2], Kind::Static).code,
            Refusal::IMAGE_CORRUPT
        );
        assert_eq!(
            refusal(&short_riff, Kind::Static).code,
            Refusal::IMAGE_CORRUPT
        );
    }

    #[test]
    fn metadata_and_trailing_bytes_are_not_re_served() {
        let png = png_of(&sticker(400, 300));
        let text = png_chunk(b"tEXt", b"Comment\0<html>secret</html>");
        let upload = [
            insert_before(&png, b"IDAT", &text).as_slice(),
            b"<html><script>alert(1)</script></html>",
        ]
        .concat();

        let encoded = accepted(&upload, Kind::Static);

        assert!(!encoded.image.windows(5).any(|w| w == b"<html"));
        let types = chunk_types(&encoded.image);
        assert!(
            types
                .iter()
                .all(|t| [b"IHDR", b"IDAT", b"IEND"].contains(&t)),
            "{types:?}"
        );
        assert_eq!(encoded.image, accepted(&png, Kind::Static).image);
    }

    #[test]
    fn output_over_the_byte_limit_is_refused() {
        // Noise does not compress: 510×510 RGBA is about 1 MiB, over the 512 KiB static limit.
        let mut seed = 0x2545_f491_u32;
        let noise = RgbaImage::from_fn(512, 512, |x, y| {
            if x == 0 || y == 0 || x == 511 || y == 511 {
                return CLEAR;
            }
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let [r, g, b, _] = seed.to_le_bytes();
            Rgba([r, g, b, 255])
        });

        assert_eq!(
            refusal(&png_of(&noise), Kind::Static).code,
            Refusal::OUTPUT_TOO_LARGE
        );
    }

    #[test]
    fn same_upload_gives_the_same_bytes() {
        let png = png_of(&sticker(400, 300));
        let apng = apng_of(5, 90, 90, (1, 10));

        assert_eq!(accepted(&png, Kind::Static), accepted(&png, Kind::Static));
        assert_eq!(
            accepted(&apng, Kind::Animated),
            accepted(&apng, Kind::Animated)
        );
    }

    #[test]
    fn pixel_cost_multiplies_size_by_frames_from_the_headers() {
        assert_eq!(pixel_cost(&png_of(&sticker(400, 300))), Some(120_000));
        assert_eq!(pixel_cost(&apng_of(6, 100, 80, (1, 10))), Some(48_000));
        assert_eq!(pixel_cost(b"\xff\xd8\xff\xe0"), None);
        assert_eq!(pixel_cost(&PNG_SIGNATURE[..]), None);
    }
}
