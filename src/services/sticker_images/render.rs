//! Decoding within limits, fitting onto the canvas with premultiplied alpha, the border rule,
//! and our own re-encoding (PNG, or APNG with the `png` crate).

use super::*;

/// Normalized frames ready to encode: canvas×canvas RGBA8, with each frame's delay.
pub(super) struct Rendered {
    pub(super) frames: Vec<(RgbaImage, u32)>,
}

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
) -> Result<Rendered, Refusal> {
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

pub(super) fn render_animation(
    format: Format,
    bytes: &[u8],
    rules: &Rules,
) -> Result<Rendered, Refusal> {
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

pub(super) fn decode_refusal(error: ImageError) -> Refusal {
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
/// canvas×canvas image.
pub(super) fn fit_to_canvas(source: &RgbaImage, canvas: u32) -> RgbaImage {
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
pub(super) struct Premultiplied<'a>(&'a RgbaImage);

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
pub(super) fn resize_premultiplied(source: &RgbaImage, width: u32, height: u32) -> RgbaImage {
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
pub(super) fn thumbnail(frame: &RgbaImage, side: u32) -> RgbaImage {
    unpremultiply(&imageops::thumbnail(&Premultiplied(frame), side, side))
}

pub(super) fn unpremultiply(premultiplied: &ImageBuffer<Rgba<u16>, Vec<u16>>) -> RgbaImage {
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
pub(super) fn clear_hidden_colour(image: &mut RgbaImage) {
    for pixel in image.pixels_mut().filter(|pixel| pixel[3] == 0) {
        *pixel = Rgba([0, 0, 0, 0]);
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

pub(super) fn encode(rendered: &Rendered, kind: Kind, rules: &Rules) -> Result<Encoded, Refusal> {
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
pub(super) fn encode_failure() -> Refusal {
    Refusal::corrupt("the image could not be re-encoded")
}

/// A plain PNG: the encoder writes IHDR, IDAT and IEND and no metadata chunk. The default
/// compression level: `Best` made encoding most of a sticker's validation time for a few
/// per cent of bytes (bench/packs.sh: 0.87 → 1.45 packs/s).
pub(super) fn encode_png(image: &RgbaImage) -> Result<Vec<u8>, Refusal> {
    let mut out = Vec::new();
    PngEncoder::new_with_quality(&mut out, CompressionType::Default, PngFilter::Adaptive)
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
pub(super) fn encode_apng(frames: &[(RgbaImage, u32)]) -> Result<Vec<u8>, png::EncodingError> {
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
