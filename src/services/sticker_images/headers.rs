//! Headers read by hand before any decoding: the format from its magic bytes, sizes, frame
//! counts and durations (PNG `IHDR`/`acTL`/`fcTL`, WebP `VP8 `/`VP8L`/`VP8X`/`ANMF`), frames
//! outside their canvas, and what the decode will hold in memory (`memory.rs` weighs it).

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    Png,
    WebP,
}

pub(super) const PNG_SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";

pub(super) fn sniff(bytes: &[u8]) -> Result<Format, Refusal> {
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
pub(super) fn describe_unsupported(bytes: &[u8]) -> &'static str {
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
pub(super) fn canvas_size(format: Format, bytes: &[u8]) -> Option<(u32, u32)> {
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
pub(super) fn bitstream_size(fourcc: &[u8], payload: &[u8]) -> Option<(u32, u32)> {
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
pub(super) struct Layout {
    /// The largest size any embedded bitstream declares. A WebP frame's bitstream is decoded at
    /// its own size before it is compared with the canvas, so it is a bomb of its own.
    pub(super) largest_bitstream: (u32, u32),
    pub(super) animation: Option<AnimationHeader>,
    pub(super) buffers: Buffers,
}

/// What decides the size of the decoder's buffers, beyond the canvas size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Buffers {
    Png {
        /// Bytes of a pixel as decoded (palette and tRNS expanded, 16-bit kept): what a
        /// still that must be decoded whole (interlaced) holds.
        bytes_per_pixel: u64,
        interlaced: bool,
        /// Some APNG frame is disposed to the previous canvas, which must then be kept.
        restores_previous: bool,
    },
    WebP {
        /// The canvas has an alpha channel (VP8X flag), so decoded canvases are RGBA, not RGB.
        alpha: bool,
        /// Pixels of the largest frame (or still) bitstream.
        largest_frame: u64,
        /// Some bitstream is lossy with an `ALPH` chunk: the costliest kind to decode.
        lossy_alpha: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct AnimationHeader {
    pub(super) frames: u32,
    pub(super) duration_ms: u64,
}

/// Walks the chunks with bounds checks; Err is a sentence saying what is damaged.
pub(super) fn layout(format: Format, bytes: &[u8]) -> Result<Layout, String> {
    let size = canvas_size(format, bytes).ok_or("the image header is missing or damaged")?;
    match format {
        Format::Png => png_layout(bytes, size),
        Format::WebP => webp_layout(bytes, size),
    }
}

pub(super) fn png_layout(bytes: &[u8], size: (u32, u32)) -> Result<Layout, String> {
    let mut animation = None;
    let (mut seen_idat, mut duration_ms) = (false, 0u64);
    let (mut frames, mut transparency, mut restores_previous) = (0u32, false, false);
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
                frames += 1;
                let damaged = || format!("the header of frame {frames} is damaged");
                let field = |at| be32(data, at).ok_or_else(damaged);
                let (width, height) = (field(4)?, field(8)?);
                let (x, y) = (field(12)?, field(16)?);
                if !inside((x, y, width, height), size) {
                    return Err(format!("frame {frames} lies outside the image"));
                }
                let num = be16(data, 20).ok_or_else(damaged)?;
                let den = be16(data, 22).ok_or_else(damaged)?;
                duration_ms += u64::from(apng_delay_ms(num, den));
                // dispose_op 2: APNG_DISPOSE_OP_PREVIOUS.
                restores_previous |= data.get(24) == Some(&2);
            }
            b"tRNS" if !seen_idat => transparency = true,
            b"IDAT" => seen_idat = true,
            b"IEND" => break,
            _ => {}
        }
        offset = data_start + length as usize + 4;
    }
    // IHDR: bit depth, colour type, then compression, filter and interlace methods.
    let (depth, colour) = (*bytes.get(24).unwrap_or(&8), *bytes.get(25).unwrap_or(&6));
    let channels = match colour {
        0 => 1 + u64::from(transparency),
        4 => 2,
        2 | 3 => 3 + u64::from(transparency),
        _ => 4,
    };
    Ok(Layout {
        largest_bitstream: size,
        animation: animation.map(|frames| AnimationHeader {
            frames,
            duration_ms,
        }),
        buffers: Buffers::Png {
            bytes_per_pixel: channels * if depth == 16 { 2 } else { 1 },
            interlaced: bytes.get(28) == Some(&1),
            restores_previous,
        },
    })
}

/// Whether the rectangle (x, y, width, height) lies within a canvas of `size`.
fn inside((x, y, width, height): (u32, u32, u32, u32), size: (u32, u32)) -> bool {
    u64::from(x) + u64::from(width) <= u64::from(size.0)
        && u64::from(y) + u64::from(height) <= u64::from(size.1)
}

pub(super) fn webp_layout(bytes: &[u8], canvas: (u32, u32)) -> Result<Layout, String> {
    let riff_end = le32(bytes, 4)
        .and_then(|size| 8usize.checked_add(size as usize))
        .filter(|&end| end <= bytes.len())
        .ok_or("the file is truncated")?;
    let body = bytes
        .get(12..riff_end)
        .ok_or("the RIFF header is damaged")?;
    let chunks = riff_chunks(body)?;
    let mut largest = canvas;
    let (mut largest_frame, mut lossy_alpha) = (0u64, false);
    let mut grow = |size: (u32, u32), chunks: &[RiffChunk<'_>]| {
        largest = (largest.0.max(size.0), largest.1.max(size.1));
        largest_frame = largest_frame.max(u64::from(size.0) * u64::from(size.1));
        lossy_alpha |= chunks.iter().any(|(fourcc, _)| fourcc == b"ALPH")
            && chunks.iter().any(|(fourcc, _)| fourcc == b"VP8 ");
    };
    let (mut frames, mut duration_ms) = (0u32, 0u64);
    for (fourcc, payload) in &chunks {
        match fourcc {
            b"VP8 " | b"VP8L" => grow(
                bitstream_size(fourcc, payload).ok_or("the image bitstream header is damaged")?,
                &chunks,
            ),
            b"ANMF" => {
                let damaged = || format!("animation frame {} is damaged", frames + 1);
                let field = |at| le24(payload, at).ok_or_else(damaged);
                // Offsets are stored halved, sizes minus one.
                let (x, y) = (field(0)? * 2, field(3)? * 2);
                let (width, height) = (field(6)? + 1, field(9)? + 1);
                if !inside((x, y, width, height), canvas) {
                    return Err(format!(
                        "animation frame {} lies outside the canvas",
                        frames + 1
                    ));
                }
                duration_ms += u64::from(field(12)?);
                let inner = riff_chunks(payload.get(16..).ok_or_else(damaged)?)?;
                let bitstream = inner
                    .iter()
                    .find(|(fourcc, _)| matches!(fourcc, b"VP8 " | b"VP8L"))
                    .and_then(|(fourcc, payload)| bitstream_size(fourcc, payload))
                    .ok_or_else(damaged)?;
                grow(bitstream, &inner);
                // The frame is decoded at its declared size too.
                grow((width, height), &[]);
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
        buffers: Buffers::WebP {
            // A simple (non-VP8X) file decodes to RGBA when lossless, RGB when lossy.
            alpha: match bytes.get(12..16) {
                Some(b"VP8X") => bytes.get(20).is_some_and(|f| f & 0x10 != 0),
                fourcc => fourcc == Some(b"VP8L"),
            },
            largest_frame,
            lossy_alpha,
        },
    })
}

/// A RIFF chunk's fourcc and payload.
type RiffChunk<'a> = ([u8; 4], &'a [u8]);

/// Splits RIFF chunks (fourcc, little-endian length, payload padded to even) with bounds checks.
pub(super) fn riff_chunks(mut rest: &[u8]) -> Result<Vec<RiffChunk<'_>>, String> {
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

pub(super) fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

pub(super) fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

pub(super) fn le24(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 3)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], 0]))
}

pub(super) fn le32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}
