//! Decoding within limits, fitting onto the canvas with premultiplied alpha, the border rule,
//! and our own re-encoding (PNG, or APNG written frame by frame, with the `png` crate).

use super::*;
use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

/// Decoder memory bound: the largest allowed source as 16-bit RGBA, and never under 64 MiB.
pub(super) fn decode_limits(rules: &Rules) -> Limits {
    let side = u64::from(rules.max_source_side);
    let mut limits = Limits::default();
    limits.max_image_width = Some(rules.max_source_side);
    limits.max_image_height = Some(rules.max_source_side);
    limits.max_alloc = Some((side * side * 8).max(64 * 1024 * 1024));
    limits
}

pub(super) fn render_static(
    format: Format,
    bytes: &[u8],
    rules: &Rules,
) -> Result<Encoded, Refusal> {
    let limits = decode_limits(rules);
    let frame = match format {
        // Rows straight from the decoder: no decoded copy of the source is held.
        Format::Png => fit_to_canvas(&mut PngRows::new(bytes, &limits)?, rules.canvas)?,
        Format::WebP => {
            let mut reader = ImageReader::with_format(Cursor::new(bytes), ImageFormat::WebP);
            reader.limits(limits);
            let source = reader.decode().map_err(decode_refusal)?;
            fit_to_canvas(&mut DynamicRows::new(&source), rules.canvas)?
        }
    };
    check_border(&frame, None)?;
    let image = encode_png(&frame)?;
    check_output(image.len(), rules.max_static_bytes)?;
    Ok(Encoded {
        image,
        thumbnail: encode_png(&thumbnail(&frame, rules.thumbnail)?)?,
        frames: 1,
        duration_ms: 0,
    })
}

/// Decodes, normalizes and encodes one frame at a time: what is held is the decoder's canvas,
/// one normalized frame and the output so far. `declared` is the frame count of the headers.
pub(super) fn render_animation(
    format: Format,
    bytes: &[u8],
    declared: u32,
    rules: &Rules,
) -> Result<Encoded, Refusal> {
    let mut animation = Animation {
        output: ApngOutput::new(rules.canvas, declared, rules.max_animated_bytes)?,
        first: None,
        frames: 0,
        duration_ms: 0,
        rules,
    };
    // The headers were counted already; the stream is still held to the limit itself.
    match format {
        Format::Png => {
            let mut stream = ApngFrames::new(bytes, &decode_limits(rules))?;
            while let Some(frame) = stream.next_frame() {
                animation.check_room()?;
                let (composite, delay) = frame?;
                animation.take(composite, delay)?;
            }
        }
        Format::WebP => {
            let mut decoder = WebPDecoder::new(Cursor::new(bytes)).map_err(decode_refusal)?;
            decoder
                .set_limits(decode_limits(rules))
                .map_err(decode_refusal)?;
            for frame in decoder.into_frames() {
                animation.check_room()?;
                let frame = frame.map_err(decode_refusal)?;
                animation.take(frame.buffer(), delay_ms(frame.delay()))?;
            }
        }
    }
    animation.finish()
}

/// An animation being normalized and encoded, frame by frame.
struct Animation<'r> {
    output: ApngOutput,
    /// The thumbnail, made from the first frame.
    first: Option<RgbaImage>,
    frames: u32,
    duration_ms: u64,
    rules: &'r Rules,
}

impl Animation<'_> {
    fn check_room(&self) -> Result<(), Refusal> {
        if self.frames >= self.rules.max_frames {
            return Err(too_many_frames(
                format!("more than {}", self.rules.max_frames),
                self.rules,
            ));
        }
        Ok(())
    }

    /// `composite` is a whole canvas at (0, 0): both decoders yield them so.
    fn take(&mut self, composite: &RgbaImage, delay: u32) -> Result<(), Refusal> {
        self.duration_ms += u64::from(delay);
        check_duration(self.duration_ms, self.rules)?;
        let normalized = fit_to_canvas(&mut rows_of(composite), self.rules.canvas)?;
        check_border(&normalized, Some(self.frames as usize))?;
        if self.first.is_none() {
            self.first = Some(thumbnail(&normalized, self.rules.thumbnail)?);
        }
        self.output.push(&normalized, delay)?;
        self.frames += 1;
        Ok(())
    }

    fn finish(self) -> Result<Encoded, Refusal> {
        check_frame_count(self.frames, self.rules)?;
        let image = self.output.finish()?;
        let first = self
            .first
            .ok_or_else(|| Refusal::corrupt("the image has no frames"))?;
        Ok(Encoded {
            image,
            thumbnail: encode_png(&first)?,
            frames: self.frames,
            duration_ms: u32::try_from(self.duration_ms).unwrap_or(u32::MAX),
        })
    }
}

pub(super) fn too_much_memory() -> Refusal {
    Refusal::new(
        Refusal::IMAGE_TOO_LARGE,
        "decoding the image would need more memory than we allow for one sticker",
    )
}

fn check_output(bytes: usize, limit: usize) -> Result<(), Refusal> {
    if bytes > limit {
        return Err(Refusal::new(
            Refusal::OUTPUT_TOO_LARGE,
            format!(
                "the re-encoded sticker is {}; at most {} is allowed, so simplify the artwork",
                human_bytes(bytes),
                human_bytes(limit)
            ),
        ));
    }
    Ok(())
}

pub(super) fn decode_refusal(error: ImageError) -> Refusal {
    match error {
        ImageError::Limits(_) => too_much_memory(),
        ImageError::Unsupported(cause) => Refusal::new(
            Refusal::UNSUPPORTED_FORMAT,
            format!("the image uses a feature we cannot read ({cause})"),
        ),
        cause => Refusal::corrupt(format!("the image could not be decoded ({cause})")),
    }
}

/// APNG frame delay in whole milliseconds; a denominator of 0 means 1/100 s.
pub(super) fn apng_delay_ms(num: u16, den: u16) -> u32 {
    let den = if den == 0 { 100 } else { u32::from(den) };
    (u32::from(num) * 1000 + den / 2) / den
}

pub(super) fn delay_ms(delay: Delay) -> u32 {
    let (num, den) = delay.numer_denom_ms();
    if den == 0 {
        return 0;
    }
    u32::try_from((u64::from(num) + u64::from(den / 2)) / u64::from(den)).unwrap_or(u32::MAX)
}

/// Scales `source` down to fit inside the canvas (never up) and centres it on a transparent
/// canvas×canvas image; fully transparent pixels become (0, 0, 0, 0).
pub(super) fn fit_to_canvas(source: &mut impl RgbaRows, canvas: u32) -> Result<RgbaImage, Refusal> {
    let (width, height) = source.size();
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
    let (x, y) = ((canvas - new_width) / 2, (canvas - new_height) / 2);
    if (new_width, new_height) == (width, height) {
        let stride = canvas as usize * 4;
        let raw: &mut [u8] = &mut out;
        for row in 0..height {
            let start = (y + row) as usize * stride + x as usize * 4;
            let target = &mut raw[start..start + width as usize * 4];
            target.copy_from_slice(source.next_row()?);
            clear_hidden_colour(target);
        }
    } else {
        resample(
            source,
            Filter::CatmullRom,
            &mut out,
            (x, y, new_width, new_height),
        )?;
    }
    Ok(out)
}

/// Thumbnail by area averaging, with premultiplied alpha.
pub(super) fn thumbnail(frame: &RgbaImage, side: u32) -> Result<RgbaImage, Refusal> {
    let (width, height) = frame.dimensions();
    if side > 0 && width == height && width % side == 0 {
        return Ok(shrink(frame, width / side));
    }
    let mut out = RgbaImage::new(side, side);
    resample(
        &mut rows_of(frame),
        Filter::Box,
        &mut out,
        (0, 0, side, side),
    )?;
    Ok(out)
}

/// Zeroes the colour of fully transparent pixels: invisible, yet a channel for hidden data.
pub(super) fn clear_hidden_colour(pixels: &mut [u8]) {
    for pixel in pixels.chunks_exact_mut(4).filter(|pixel| pixel[3] == 0) {
        pixel.fill(0);
    }
}

/// The outermost 1-px ring of the canvas must be fully transparent: a sticker keeps a margin.
pub(super) fn check_border(frame: &RgbaImage, index: Option<usize>) -> Result<(), Refusal> {
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

/// Writing into a Vec cannot fail short of running out of memory; kept as a refusal all the same.
pub(super) fn encode_failure() -> Refusal {
    Refusal::corrupt("the image could not be re-encoded")
}

/// A plain PNG: IHDR, IDAT and IEND, no metadata chunk, at the default level (adaptive
/// filters, zlib level 6 through zlib-rs). A sticker is encoded once and downloaded by every
/// chat that shows it, so its size wins over encoding time: fdeflate's fastest level made
/// textured stickers 2-6× larger, and level 3 was 1.5-1.7× faster for 12% larger files.
pub(super) fn encode_png(image: &RgbaImage) -> Result<Vec<u8>, Refusal> {
    png_of(image, png::Compression::Balanced).map_err(|_| encode_failure())
}

fn png_of(image: &RgbaImage, compression: png::Compression) -> Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, image.width(), image.height());
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    // Sets the filter too: Up for Fastest, adaptive for the others.
    encoder.set_compression(compression);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(image.as_raw())?;
    writer.finish()?;
    Ok(out)
}

/// An APNG written as its frames come: full-canvas frames, each replacing the last (blend
/// Source, dispose None), looping forever. The first frame is the IDAT image, so viewers
/// without APNG show it as the preview. Once the output is over its limit, the rest of the
/// frames are still checked but no longer encoded.
struct ApngOutput {
    writer: Option<png::Writer<SharedBuffer>>,
    buffer: SharedBuffer,
    limit: usize,
}

/// The output buffer, shared with the writer so its length can be read between frames.
#[derive(Clone, Default)]
struct SharedBuffer(Rc<RefCell<Vec<u8>>>);

impl Write for SharedBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl ApngOutput {
    fn new(side: u32, frames: u32, limit: usize) -> Result<Self, Refusal> {
        let buffer = SharedBuffer::default();
        let start = || -> Result<_, png::EncodingError> {
            let mut encoder = png::Encoder::new(buffer.clone(), side, side);
            encoder.set_color(png::ColorType::Rgba);
            encoder.set_depth(png::BitDepth::Eight);
            encoder.set_compression(png::Compression::High);
            encoder.validate_sequence(true);
            encoder.set_animated(frames, 0)?;
            encoder.set_dispose_op(png::DisposeOp::None)?;
            encoder.set_blend_op(png::BlendOp::Source)?;
            encoder.write_header()
        };
        let writer = start().map_err(|_| encode_failure())?;
        Ok(ApngOutput {
            writer: Some(writer),
            buffer,
            limit,
        })
    }

    fn push(&mut self, frame: &RgbaImage, delay: u32) -> Result<(), Refusal> {
        let Some(writer) = &mut self.writer else {
            return Ok(());
        };
        let (num, den) = match u16::try_from(delay) {
            Ok(ms) => (ms, 1000),
            Err(_) => (u16::try_from(delay / 10).unwrap_or(u16::MAX), 100),
        };
        writer
            .set_frame_delay(num, den)
            .and_then(|()| writer.write_image_data(frame.as_raw()))
            .map_err(|_| encode_failure())?;
        if self.buffer.0.borrow().len() > self.limit {
            self.writer = None;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Vec<u8>, Refusal> {
        if let Some(writer) = self.writer.take() {
            writer.finish().map_err(|_| encode_failure())?;
        }
        let image = self.buffer.0.take();
        check_output(image.len(), self.limit)?;
        Ok(image)
    }
}

pub(super) fn human_bytes(bytes: usize) -> String {
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
