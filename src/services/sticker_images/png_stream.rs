//! PNG decoded row by row with the `png` crate, converted to RGBA8 as `image` converts:
//! - a still's rows go straight to the canvas or the resampler, so no decoded copy of the
//!   source is held (an interlaced one excepted: its passes scatter over the image);
//! - APNG frames are composited one at a time onto one RGBA8 canvas, so a decode holds the
//!   canvas (and a copy of it only when some frame is disposed to the previous canvas), never
//!   a buffer per frame nor a copy per frame handed out. Compositing follows
//!   `image::codecs::png::ApngDecoder` step for step, so the frames are the ones it gave (the
//!   tests compare them).

use super::*;
use image::Pixel;
use png::{BlendOp, DisposeOp, FrameControl};

/// A rectangle of the canvas: x, y, width, height.
type Region = (u32, u32, u32, u32);

/// A reader set up as `image` sets up its own: text chunks read (never inflated), palettes and
/// low bit depths expanded to 8 bits, tRNS to an alpha channel, 16 bits kept.
fn reader<'a>(bytes: &'a [u8], limits: &Limits) -> Result<png::Reader<Cursor<&'a [u8]>>, Refusal> {
    let bytes_limit = limits
        .max_alloc
        .map_or(usize::MAX, |max| usize::try_from(max).unwrap_or(usize::MAX));
    let mut decoder =
        png::Decoder::new_with_limits(Cursor::new(bytes), png::Limits { bytes: bytes_limit });
    decoder.set_ignore_text_chunk(false);
    decoder.set_transformations(png::Transformations::EXPAND);
    decoder.read_info().map_err(png_refusal)
}

/// The rows of a still PNG, top to bottom.
pub(super) struct PngRows<'a> {
    reader: png::Reader<Cursor<&'a [u8]>>,
    colour: (png::ColorType, png::BitDepth),
    /// An interlaced image, decoded whole, and the next row to hand out.
    whole: Option<(Vec<u8>, usize)>,
    rgba: Vec<u8>,
}

impl<'a> PngRows<'a> {
    pub(super) fn new(bytes: &'a [u8], limits: &Limits) -> Result<Self, Refusal> {
        let mut reader = reader(bytes, limits)?;
        let whole = if reader.info().interlaced {
            let size = reader.output_buffer_size().ok_or_else(too_much_memory)?;
            let mut buffer = vec![0u8; size];
            reader.next_frame(&mut buffer).map_err(png_refusal)?;
            Some((buffer, 0))
        } else {
            None
        };
        let colour = reader.output_color_type();
        let width = reader.info().width as usize;
        Ok(PngRows {
            reader,
            colour,
            whole,
            rgba: vec![0; width * 4],
        })
    }
}

impl RgbaRows for PngRows<'_> {
    fn size(&self) -> (u32, u32) {
        self.reader.info().size()
    }

    fn next_row(&mut self) -> Result<&[u8], Refusal> {
        let data = match &mut self.whole {
            Some((buffer, at)) => {
                let line = self.rgba.len() / 4 * samples_bytes(self.colour);
                let data = buffer
                    .get(*at..*at + line)
                    .ok_or_else(|| Refusal::corrupt("the image is truncated"))?;
                *at += line;
                data
            }
            None => self
                .reader
                .next_row()
                .map_err(png_refusal)?
                .ok_or_else(|| Refusal::corrupt("the image is truncated"))?
                .data(),
        };
        if self.colour == (png::ColorType::Rgba, png::BitDepth::Eight) {
            return Ok(data);
        }
        to_rgba(self.colour, data, &mut self.rgba);
        Ok(&self.rgba)
    }
}

/// Bytes of one pixel in the reader's output.
fn samples_bytes((colour, depth): (png::ColorType, png::BitDepth)) -> usize {
    colour.samples()
        * if depth == png::BitDepth::Sixteen {
            2
        } else {
            1
        }
}

pub(super) struct ApngFrames<'a> {
    reader: png::Reader<Cursor<&'a [u8]>>,
    canvas: RgbaImage,
    /// The canvas before the last frame that is not disposed to the previous canvas; kept only
    /// while a frame disposed so is pending.
    previous: Option<RgbaImage>,
    /// How the last frame is disposed of before the next is drawn, and where it was drawn.
    dispose: (DisposeOp, Option<Region>),
    remaining: u32,
    started: bool,
}

impl<'a> ApngFrames<'a> {
    pub(super) fn new(bytes: &'a [u8], limits: &Limits) -> Result<Self, Refusal> {
        let reader = reader(bytes, limits)?;
        // As `image`: it does not composite 16-bit frames.
        if reader.output_color_type().1 != png::BitDepth::Eight {
            return Err(Refusal::new(
                Refusal::UNSUPPORTED_FORMAT,
                "the image uses a feature we cannot read (16-bit animation)",
            ));
        }
        let (width, height) = reader.info().size();
        let remaining = reader
            .info()
            .animation_control()
            .map_or(0, |control| control.num_frames);
        Ok(ApngFrames {
            reader,
            canvas: RgbaImage::new(width, height),
            previous: None,
            dispose: (DisposeOp::Background, None),
            remaining,
            started: false,
        })
    }

    /// Draws the next frame; the whole canvas after it and the frame's delay in ms.
    pub(super) fn next_frame(&mut self) -> Option<Result<(&RgbaImage, u32), Refusal>> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        match self.draw_next() {
            Ok(delay) => Some(Ok((&self.canvas, delay))),
            Err(refusal) => {
                self.remaining = 0;
                Some(Err(refusal))
            }
        }
    }

    fn draw_next(&mut self) -> Result<u32, Refusal> {
        // The IDAT image is the first frame when an fcTL precedes it; otherwise it is a default
        // image outside the animation, skipped like every frame's data once drawn.
        let idat_is_first_frame = !self.started && self.reader.info().frame_control.is_some();
        self.started = true;
        let control: Option<FrameControl> = if idat_is_first_frame {
            self.reader.info().frame_control
        } else {
            Some(*self.reader.next_frame_info().map_err(png_refusal)?)
        };
        let control =
            control.ok_or_else(|| Refusal::corrupt("an animation frame has no frame header"))?;
        self.dispose_last(control.dispose_op);
        let region = (
            control.x_offset,
            control.y_offset,
            control.width,
            control.height,
        );
        let (width, height) = self.canvas.dimensions();
        if u64::from(region.0) + u64::from(region.2) > u64::from(width)
            || u64::from(region.1) + u64::from(region.3) > u64::from(height)
        {
            return Err(Refusal::corrupt(
                "an animation frame lies outside the image",
            ));
        }
        self.draw(region, control.blend_op)?;
        self.dispose = (control.dispose_op, Some(region));
        Ok(apng_delay_ms(control.delay_num, control.delay_den))
    }

    /// Disposes of the last frame as `ApngDecoder` does: the canvas is saved before None and
    /// Background (so Previous restores the canvas with the last such frame still drawn), and
    /// Previous restores its region from the copy. The copy is only made when `next`, the
    /// frame about to be drawn, is the one to restore it.
    fn dispose_last(&mut self, next: DisposeOp) {
        let (op, region) = self.dispose;
        if op != DisposeOp::Previous && next == DisposeOp::Previous {
            match &mut self.previous {
                Some(previous) => previous.clone_from(&self.canvas),
                None => self.previous = Some(self.canvas.clone()),
            }
        }
        match (op, region) {
            (DisposeOp::None, _) => {}
            (DisposeOp::Background, None) => self.canvas.fill(0),
            (DisposeOp::Background, Some(region)) => {
                for_rows(&mut self.canvas, region, |row, _| row.fill(0));
            }
            (DisposeOp::Previous, region) => {
                let (Some(previous), Some(region)) = (&self.previous, region) else {
                    return;
                };
                let stride = previous.width() as usize * 4;
                for_rows(&mut self.canvas, region, |row, y| {
                    let start = y as usize * stride + region.0 as usize * 4;
                    row.copy_from_slice(&previous.as_raw()[start..start + row.len()]);
                });
            }
        }
    }

    /// Decodes the frame's rows onto the canvas, converted to RGBA8 as `image` converts.
    fn draw(&mut self, region: Region, blend: BlendOp) -> Result<(), Refusal> {
        let colour = self.reader.output_color_type();
        let line = region.2 as usize * samples_bytes(colour);
        let mut rgba = vec![0u8; region.2 as usize * 4];
        if self.reader.info().interlaced {
            // Adam7 passes scatter over the frame: decode it whole first, as `image` does.
            let size = self
                .reader
                .output_buffer_size()
                .ok_or_else(too_much_memory)?;
            let mut buffer = vec![0u8; size];
            self.reader.next_frame(&mut buffer).map_err(png_refusal)?;
            let canvas = &mut self.canvas;
            for (y, data) in buffer
                .chunks_exact(line.max(1))
                .take(region.3 as usize)
                .enumerate()
            {
                to_rgba(colour, data, &mut rgba);
                put_row(canvas, region, y as u32, &rgba, blend);
            }
            return Ok(());
        }
        for y in 0..region.3 {
            let row = self
                .reader
                .next_row()
                .map_err(png_refusal)?
                .ok_or_else(|| Refusal::corrupt("an animation frame is truncated"))?;
            to_rgba(colour, row.data(), &mut rgba);
            put_row(&mut self.canvas, region, y, &rgba, blend);
        }
        Ok(())
    }
}

/// Calls `f` with each row of `region` of `image` (as bytes) and its y.
fn for_rows(image: &mut RgbaImage, region: Region, mut f: impl FnMut(&mut [u8], u32)) {
    let stride = image.width() as usize * 4;
    let raw: &mut [u8] = image;
    for y in region.1..region.1 + region.3 {
        let start = y as usize * stride + region.0 as usize * 4;
        f(&mut raw[start..start + region.2 as usize * 4], y);
    }
}

/// One row of the reader's output as RGBA8, as `image` converts: grey to its three channels,
/// 16-bit samples rounded to 8 bits, missing alpha opaque.
fn to_rgba((colour, depth): (png::ColorType, png::BitDepth), data: &[u8], out: &mut [u8]) {
    if depth == png::BitDepth::Sixteen {
        // Big-endian samples; `image` rounds them as round(c × 255 / 65535).
        let narrow =
            |pair: &[u8]| ((u32::from(u16::from_be_bytes([pair[0], pair[1]])) + 128) / 257) as u8;
        let samples: Vec<u8> = data.chunks_exact(2).map(narrow).collect();
        return to_rgba((colour, png::BitDepth::Eight), &samples, out);
    }
    let pixels = out.chunks_exact_mut(4);
    match colour {
        png::ColorType::Grayscale => {
            for (p, &l) in pixels.zip(data) {
                p.copy_from_slice(&[l, l, l, 255]);
            }
        }
        png::ColorType::GrayscaleAlpha => {
            for (p, la) in pixels.zip(data.chunks_exact(2)) {
                p.copy_from_slice(&[la[0], la[0], la[0], la[1]]);
            }
        }
        png::ColorType::Rgb => {
            for (p, rgb) in pixels.zip(data.chunks_exact(3)) {
                p.copy_from_slice(&[rgb[0], rgb[1], rgb[2], 255]);
            }
        }
        // Indexed is expanded to Rgb or Rgba before it gets here.
        png::ColorType::Rgba | png::ColorType::Indexed => {
            let length = out.len().min(data.len());
            out[..length].copy_from_slice(&data[..length]);
        }
    }
}

/// Row `y` of the frame at `region`: replaces the canvas (Source) or is blended over it.
fn put_row(canvas: &mut RgbaImage, region: Region, y: u32, rgba: &[u8], blend: BlendOp) {
    let stride = canvas.width() as usize * 4;
    let start = (region.1 + y) as usize * stride + region.0 as usize * 4;
    let raw: &mut [u8] = canvas;
    let target = &mut raw[start..start + rgba.len()];
    match blend {
        BlendOp::Source => target.copy_from_slice(rgba),
        BlendOp::Over => {
            for (below, above) in target.chunks_exact_mut(4).zip(rgba.chunks_exact(4)) {
                let mut pixel = Rgba([below[0], below[1], below[2], below[3]]);
                pixel.blend(&Rgba([above[0], above[1], above[2], above[3]]));
                below.copy_from_slice(&pixel.0);
            }
        }
    }
}

pub(super) fn png_refusal(error: png::DecodingError) -> Refusal {
    match error {
        png::DecodingError::LimitsExceeded => too_much_memory(),
        cause => Refusal::corrupt(format!("the image could not be decoded ({cause})")),
    }
}
