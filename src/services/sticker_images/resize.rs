//! Resampling RGBA8 with premultiplied alpha, so transparent pixels' colour cannot bleed into
//! the edges as a dark or coloured halo. It streams: each source row is premultiplied and
//! resampled across, into a ring of as many rows as the vertical filter spans, and an output row
//! is made as soon as its rows are in. A 4096-px source never has a full-size copy.

use super::Refusal;
use image::{DynamicImage, RgbaImage};

/// Rows of an RGBA8 image, top to bottom, each once: from a decoder (`PngRows`) or an image
/// in memory (`rows_of`, `DynamicRows`).
pub(super) trait RgbaRows {
    fn size(&self) -> (u32, u32);
    fn next_row(&mut self) -> Result<&[u8], Refusal>;
}

/// The rows of an RGBA8 image in memory.
pub(super) struct ImageRows<'a> {
    image: &'a RgbaImage,
    y: usize,
}

pub(super) fn rows_of(image: &RgbaImage) -> ImageRows<'_> {
    ImageRows { image, y: 0 }
}

impl RgbaRows for ImageRows<'_> {
    fn size(&self) -> (u32, u32) {
        self.image.dimensions()
    }

    fn next_row(&mut self) -> Result<&[u8], Refusal> {
        let stride = self.image.width() as usize * 4;
        let row = self
            .image
            .as_raw()
            .get(self.y * stride..(self.y + 1) * stride)
            .ok_or_else(|| Refusal::corrupt("the image has fewer rows than it declares"))?;
        self.y += 1;
        Ok(row)
    }
}

/// The rows of a decoded image of any colour type, converted to RGBA8 one at a time with the
/// `image` crate's own conversion.
pub(super) struct DynamicRows<'a> {
    image: &'a DynamicImage,
    y: u32,
    row: Vec<u8>,
}

impl<'a> DynamicRows<'a> {
    pub(super) fn new(image: &'a DynamicImage) -> Self {
        DynamicRows {
            image,
            y: 0,
            row: Vec::new(),
        }
    }
}

impl RgbaRows for DynamicRows<'_> {
    fn size(&self) -> (u32, u32) {
        (self.image.width(), self.image.height())
    }

    fn next_row(&mut self) -> Result<&[u8], Refusal> {
        let y = self.y;
        self.y += 1;
        if let DynamicImage::ImageRgba8(image) = self.image {
            let stride = image.width() as usize * 4;
            return image
                .as_raw()
                .get(y as usize * stride..(y as usize + 1) * stride)
                .ok_or_else(|| Refusal::corrupt("the image has fewer rows than it declares"));
        }
        self.row = self
            .image
            .crop_imm(0, y, self.image.width(), 1)
            .into_rgba8()
            .into_raw();
        Ok(&self.row)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Filter {
    /// Sharp, for the sticker itself.
    CatmullRom,
    /// Area averaging, for the thumbnail: softer and several times cheaper.
    Box,
}

impl Filter {
    fn support(self) -> f32 {
        match self {
            Filter::CatmullRom => 2.0,
            Filter::Box => 0.5,
        }
    }

    fn weight(self, x: f32) -> f32 {
        let x = x.abs();
        match self {
            Filter::CatmullRom if x < 1.0 => (1.5 * x - 2.5) * x * x + 1.0,
            Filter::CatmullRom if x < 2.0 => ((-0.5 * x + 2.5) * x - 4.0) * x + 2.0,
            Filter::Box if x <= 0.5 => 1.0,
            _ => 0.0,
        }
    }
}

/// For each output pixel along one axis, the source pixels it takes and their weights: the
/// same sampling as `image::imageops::resize`, with the filter widened when shrinking.
struct Axis {
    /// (first source pixel, offset of its weights in `weights`, number of weights).
    taps: Vec<(usize, usize, usize)>,
    weights: Vec<f32>,
}

impl Axis {
    fn new(source: u32, target: u32, filter: Filter) -> Axis {
        let ratio = source as f32 / target as f32;
        let scale = ratio.max(1.0);
        let support = filter.support() * scale;
        let mut taps = Vec::with_capacity(target as usize);
        let mut weights = Vec::new();
        for out in 0..target {
            let centre = (out as f32 + 0.5) * ratio;
            let last = i64::from(source) - 1;
            let left = ((centre - support).floor() as i64).clamp(0, last);
            let right = ((centre + support).ceil() as i64).clamp(left + 1, last + 1);
            let taken: Vec<f32> = (left..right)
                .map(|i| filter.weight((i as f32 - centre + 0.5) / scale))
                .collect();
            let sum: f32 = taken.iter().sum();
            let norm = if sum == 0.0 { 1.0 } else { 1.0 / sum };
            taps.push((left as usize, weights.len(), taken.len()));
            weights.extend(taken.iter().map(|w| w * norm));
        }
        Axis { taps, weights }
    }

    /// Source pixels the widest output pixel takes. Windows only move forward (`first` and
    /// `first + count` never decrease), so an output row is made as soon as its last row is in.
    fn span(&self) -> usize {
        self.taps
            .iter()
            .map(|&(_, _, count)| count)
            .max()
            .unwrap_or(1)
    }

    /// The output pixels whose window meets source pixels [lo, hi).
    fn reaching(&self, lo: usize, hi: usize) -> (usize, usize) {
        let start = self
            .taps
            .partition_point(|&(first, _, count)| first + count <= lo);
        let end = self.taps.partition_point(|&(first, _, _)| first < hi);
        (start, end.max(start))
    }
}

type Premultiplied = [f32; 4];

/// Resamples `source` to `width`×`height` into `out` at (`x`, `y`), whose pixels there must be
/// transparent black (a new image): only what the source's opaque spans reach is written, as
/// stickers are mostly transparent margin. Fully transparent pixels come out as (0, 0, 0, 0).
pub(super) fn resample(
    source: &mut impl RgbaRows,
    filter: Filter,
    out: &mut RgbaImage,
    (x, y, width, height): (u32, u32, u32, u32),
) -> Result<(), Refusal> {
    let (source_width, source_height) = source.size();
    if width == 0 || height == 0 || source_width == 0 || source_height == 0 {
        return Ok(());
    }
    let across = Axis::new(source_width, width, filter);
    let down = Axis::new(source_height, height, filter);
    let ring_rows = down.span();
    let (width, stride) = (width as usize, out.width() as usize * 4);
    let mut ring = vec![[0f32; 4]; ring_rows * width];
    // The output columns each ring row has values for; None when its source row is clear.
    let mut spans: Vec<Option<(usize, usize)>> = vec![None; ring_rows];
    let mut premultiplied = vec![[0f32; 4]; source_width as usize];
    let mut sum = vec![[0f32; 4]; width];
    let out_raw: &mut [u8] = out;
    let mut next = 0;
    for row in 0..source_height as usize {
        let slot = row % ring_rows;
        let pixels = source.next_row()?;
        spans[slot] = opaque_span(pixels).and_then(|(lo, hi)| {
            // Output columns with a tap in [lo, hi), and the source columns all their taps take.
            let (start, end) = across.reaching(lo, hi);
            let taps = &across.taps[start..end];
            let from = taps.first()?.0;
            let to = taps.last().map(|&(first, _, count)| first + count)?;
            premultiply(&pixels[from * 4..to * 4], &mut premultiplied[from..to]);
            let target = &mut ring[slot * width..][start..end];
            for (pixel, &(first, offset, count)) in target.iter_mut().zip(taps) {
                *pixel = weighted(
                    &premultiplied[first..first + count],
                    &across.weights[offset..offset + count],
                );
            }
            Some((start, end))
        });
        // Every output row whose source rows are all in the ring now.
        while let Some(&(first, offset, count)) = down.taps.get(next) {
            if first + count > row + 1 {
                break;
            }
            let rows =
                (first..first + count).map(|r| spans[r % ring_rows].map(|s| (r % ring_rows, s)));
            let union = rows
                .clone()
                .flatten()
                .map(|(_, s)| s)
                .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)));
            if let Some((start, end)) = union {
                sum[start..end].fill([0.0; 4]);
                for (taken, &w) in rows.zip(&down.weights[offset..offset + count]) {
                    let Some((slot, (lo, hi))) = taken else {
                        continue;
                    };
                    // Flat, so that it is vectorized across pixels.
                    let source = ring[slot * width..][lo..hi].as_flattened();
                    for (total, value) in sum[lo..hi].as_flattened_mut().iter_mut().zip(source) {
                        *total += value * w;
                    }
                }
                let at = (y as usize + next) * stride + (x as usize + start) * 4;
                for (target, pixel) in out_raw[at..at + (end - start) * 4]
                    .chunks_exact_mut(4)
                    .zip(&sum[start..end])
                {
                    target.copy_from_slice(&straight(*pixel));
                }
            }
            next += 1;
        }
    }
    Ok(())
}

/// First and one past the last pixel of `pixels` (RGBA8) that is not fully transparent.
pub(super) fn opaque_span(pixels: &[u8]) -> Option<(usize, usize)> {
    // Sixteen pixels at a time: most rows of a sticker start and end in a wide transparent
    // margin, and many are transparent throughout.
    const BLOCK: usize = 64;
    let visible = |i: &usize| pixels[i * 4 + 3] != 0;
    let blocks = pixels.len() / BLOCK;
    let first_block = pixels
        .chunks_exact(BLOCK)
        .position(any_visible)
        .unwrap_or(blocks);
    let lo = (first_block * BLOCK / 4..pixels.len() / 4).find(visible)?;
    let last_block = pixels[..blocks * BLOCK]
        .chunks_exact(BLOCK)
        .rposition(any_visible);
    let tail = (blocks * BLOCK / 4..pixels.len() / 4).rev().find(visible);
    let hi = match (tail, last_block) {
        (Some(last), _) => last,
        (None, Some(block)) => (block * BLOCK / 4..(block + 1) * BLOCK / 4)
            .rev()
            .find(visible)?,
        (None, None) => lo,
    };
    Some((lo, hi + 1))
}

/// Whether any pixel of a block of RGBA8 bytes (a multiple of 8 long) has some alpha.
fn any_visible(block: &[u8]) -> bool {
    const ALPHAS: u64 = 0xff00_0000_ff00_0000;
    let alphas = block.chunks_exact(8).fold(0, |all, pair| {
        let mut word = [0u8; 8];
        word.copy_from_slice(pair);
        all | (u64::from_le_bytes(word) & ALPHAS)
    });
    alphas != 0
}

fn premultiply(pixels: &[u8], out: &mut [Premultiplied]) {
    for (target, p) in out.iter_mut().zip(pixels.chunks_exact(4)) {
        let alpha = f32::from(p[3]);
        let k = alpha * (1.0 / 255.0);
        *target = [
            f32::from(p[0]) * k,
            f32::from(p[1]) * k,
            f32::from(p[2]) * k,
            alpha,
        ];
    }
}

fn weighted(pixels: &[Premultiplied], weights: &[f32]) -> Premultiplied {
    let mut total = [0f32; 4];
    for (pixel, &w) in pixels.iter().zip(weights) {
        for c in 0..4 {
            total[c] += pixel[c] * w;
        }
    }
    total
}

/// Back to straight alpha. Colour is divided by the unclamped alpha, so where the filter
/// overshoots an edge, colour and alpha overshoot together and the hue stays.
#[inline]
fn straight(pixel: Premultiplied) -> [u8; 4] {
    let alpha = to_u8(pixel[3]);
    if alpha == 0 {
        return [0; 4];
    }
    let k = 255.0 / pixel[3];
    [
        to_u8(pixel[0] * k),
        to_u8(pixel[1] * k),
        to_u8(pixel[2] * k),
        alpha,
    ]
}

/// Clamped to 0..=255 and rounded (half to even), without a checked float-to-integer cast:
/// adding 2²³ leaves the rounded value in the low bits of the mantissa.
#[inline]
fn to_u8(value: f32) -> u8 {
    let value = if value > 0.0 { value } else { 0.0 };
    let value = if value < 255.0 { value } else { 255.0 };
    (value + 8_388_608.0).to_bits() as u8
}

/// Area averaging by a whole `factor` (the thumbnail of a 512-px canvas is a quarter of it),
/// with premultiplied alpha in integers: what `resample` with `Filter::Box` gives, faster.
pub(super) fn shrink(frame: &RgbaImage, factor: u32) -> RgbaImage {
    let (factor, stride) = (factor.max(1) as usize, frame.width() as usize * 4);
    let mut out = RgbaImage::new(
        frame.width() / factor as u32,
        frame.height() / factor as u32,
    );
    let (width, block) = (out.width() as usize, (factor * factor) as u32);
    let mut sums = vec![[0u32; 4]; width];
    for (target, rows) in out
        .chunks_exact_mut(width * 4)
        .zip(frame.as_raw().chunks_exact(stride * factor))
    {
        sums.fill([0; 4]);
        let mut any = false;
        for row in rows.chunks_exact(stride) {
            let Some((lo, hi)) = opaque_span(row) else {
                continue;
            };
            any = true;
            let hi = hi.min(width * factor);
            for (column, sum) in sums
                .iter_mut()
                .enumerate()
                .take(hi.div_ceil(factor))
                .skip(lo / factor)
            {
                let from = (column * factor).max(lo);
                let to = (column * factor + factor).min(hi);
                // Summed in registers, then added: one store per block, not per pixel.
                let mut block = [0u32; 4];
                for p in row[from * 4..to * 4].chunks_exact(4) {
                    let alpha = u32::from(p[3]);
                    block[0] += u32::from(p[0]) * alpha;
                    block[1] += u32::from(p[1]) * alpha;
                    block[2] += u32::from(p[2]) * alpha;
                    block[3] += alpha;
                }
                for (total, part) in sum.iter_mut().zip(block) {
                    *total += part;
                }
            }
        }
        if !any {
            continue;
        }
        // Divisions by multiplying by a reciprocal: an integer division per channel took
        // more time than all the sums.
        let per_pixel = 1.0 / block as f32;
        for (pixel, sum) in target.chunks_exact_mut(4).zip(&sums) {
            let alpha = to_u8(sum[3] as f32 * per_pixel);
            if alpha == 0 {
                continue;
            }
            let k = 1.0 / sum[3] as f32;
            let colour = |c: u32| to_u8(c as f32 * k);
            pixel.copy_from_slice(&[colour(sum[0]), colour(sum[1]), colour(sum[2]), alpha]);
        }
    }
    out
}
