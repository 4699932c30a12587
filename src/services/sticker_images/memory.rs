//! What a decode holds in memory at its peak, estimated from the headers before decoding.
//!
//! Uploads are admitted by this figure (`pixel_cost`), so the permit pool bounds the memory of
//! all decodes together, and an animation whose figure exceeds the decoder memory bound is
//! refused before decoding. Each term names the buffers it stands for; the tests measure real
//! decodes against it (`decode_memory_stays_within_its_estimate`).

use super::*;

/// Our own work whatever the source, for canvases up to 512 px (1 MiB): the canvas, the
/// resampler's ring of rows, the thumbnail, the encoders' buffers and their output (animated
/// output stops growing once over its limit). About 2 MiB measured.
const PIPELINE_BYTES: u64 = 6 << 20;

/// Per source pixel of width: the decoder's rows, one row converted to RGBA8 and the
/// resampler's premultiplied row.
const ROW_BYTES: u64 = 64;

/// Decoder scratch per pixel of a WebP bitstream, beside the pixels it decodes to: the VP8L
/// transform and entropy images (under a pixel's worth), or the VP8 Y/U/V planes (1.5).
const WEBP_SCRATCH: u64 = 2;

/// A lossy bitstream with `ALPH` holds, besides: the alpha plane decoded as lossless RGBA (4)
/// with its transforms, and the plane of alpha values itself (1).
const WEBP_ALPHA_SCRATCH: u64 = 6;

/// Peak bytes of checking `bytes`, given what its headers declare.
pub(super) struct Estimate {
    /// Buffers of the decoder, which grow with the source: what the decode bound is about.
    pub(super) decoder: u64,
    /// With our own work on top.
    pub(super) total: u64,
}

pub(super) fn estimate(size: (u32, u32), layout: &Layout) -> Estimate {
    let canvas = u64::from(size.0) * u64::from(size.1);
    let animated = layout.animation.is_some();
    let decoder = match layout.buffers {
        // A still is read row by row (png_stream.rs); an interlaced one is decoded whole first.
        Buffers::Png {
            bytes_per_pixel,
            interlaced,
            ..
        } if !animated => canvas * bytes_per_pixel * u64::from(interlaced),
        // Our APNG compositor (apng.rs): the RGBA8 canvas and, when some frame restores the
        // previous one, a copy; an interlaced frame is decoded whole before compositing.
        Buffers::Png {
            interlaced,
            restores_previous,
            ..
        } => canvas * 4 * (1 + u64::from(restores_previous) + u64::from(interlaced)),
        Buffers::WebP {
            alpha,
            largest_frame,
            lossy_alpha,
        } => {
            let scratch = if lossy_alpha {
                WEBP_SCRATCH + WEBP_ALPHA_SCRATCH
            } else {
                WEBP_SCRATCH
            };
            // Each frame is decoded to RGBA (or RGB) pixels of its own before compositing.
            let frame = largest_frame * (4 + scratch);
            if animated {
                // The decoder's canvas, and the canvas it hands out: RGBA, or RGB converted
                // to a new RGBA image.
                canvas * if alpha { 4 + 4 } else { 4 + 3 + 4 } + frame
            } else {
                canvas * if alpha { 4 } else { 3 } + frame
            }
        }
    };
    Estimate {
        decoder,
        total: decoder + u64::from(size.0) * ROW_BYTES + PIPELINE_BYTES,
    }
}
