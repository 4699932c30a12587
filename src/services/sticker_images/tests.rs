//! Fixtures are made here, with the image and png crates: no binary files. The helpers serve
//! `frame_tests.rs` too.

use super::*;
use image::codecs::png::PngDecoder;
use image::codecs::webp::WebPEncoder;
use image::{imageops, DynamicImage, ExtendedColorType};

pub(super) const RED: Rgba<u8> = Rgba([220, 30, 40, 255]);
pub(super) const CLEAR: Rgba<u8> = Rgba([0, 0, 0, 0]);

/// An opaque red rectangle, shifted right by `shift` px, inside a transparent margin of an
/// eighth of each side.
pub(super) fn sticker_shifted(width: u32, height: u32, shift: u32) -> RgbaImage {
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

pub(super) fn sticker(width: u32, height: u32) -> RgbaImage {
    sticker_shifted(width, height, 0)
}

pub(super) fn png_of(image: &RgbaImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, ImageFormat::Png).unwrap();
    out.into_inner()
}

pub(super) fn apng_of(frames: u32, width: u32, height: u32, delay: (u16, u16)) -> Vec<u8> {
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

pub(super) fn webp_of(image: &RgbaImage) -> Vec<u8> {
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

pub(super) fn riff_chunk(fourcc: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut out = fourcc.to_vec();
    out.extend((payload.len() as u32).to_le_bytes());
    out.extend(payload);
    if payload.len() % 2 == 1 {
        out.push(0);
    }
    out
}

pub(super) fn le24_bytes(value: u32) -> [u8; 3] {
    let [a, b, c, _] = value.to_le_bytes();
    [a, b, c]
}

pub(super) fn riff(chunks: &[Vec<u8>]) -> Vec<u8> {
    let body = [b"WEBP".to_vec(), chunks.concat()].concat();
    [
        b"RIFF".to_vec(),
        (body.len() as u32).to_le_bytes().to_vec(),
        body,
    ]
    .concat()
}

pub(super) fn vp8x(flags: u8, width: u32, height: u32) -> Vec<u8> {
    let mut payload = vec![flags, 0, 0, 0];
    payload.extend(le24_bytes(width - 1));
    payload.extend(le24_bytes(height - 1));
    riff_chunk(b"VP8X", &payload)
}

/// An animated WebP of full-canvas lossless frames (the image crate cannot write one).
pub(super) fn animated_webp_of(frames: u32, width: u32, height: u32, delay_ms: u32) -> Vec<u8> {
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

pub(super) fn crc32(bytes: &[u8]) -> u32 {
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

pub(super) fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let covered = [kind.as_slice(), data].concat();
    [
        (data.len() as u32).to_be_bytes().as_slice(),
        &covered,
        &crc32(&covered).to_be_bytes(),
    ]
    .concat()
}

pub(super) fn ihdr(width: u32, height: u32, interlace: u8) -> Vec<u8> {
    let data = [width.to_be_bytes(), height.to_be_bytes()].concat();
    png_chunk(
        b"IHDR",
        &[data.as_slice(), &[8, 6, 0, 0, interlace]].concat(),
    )
}

/// Chunk types of a PNG, in order, up to and including IEND.
pub(super) fn chunk_types(png: &[u8]) -> Vec<[u8; 4]> {
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
pub(super) fn insert_before(png: &[u8], before: &[u8; 4], chunk: &[u8]) -> Vec<u8> {
    let at = png.windows(4).position(|w| w == before).unwrap() - 4;
    [&png[..at], chunk, &png[at..]].concat()
}

/// Zlib stream of stored (uncompressed) deflate blocks.
pub(super) fn zlib_stored(data: &[u8]) -> Vec<u8> {
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
pub(super) fn interlaced_png_of(image: &RgbaImage) -> Vec<u8> {
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

pub(super) fn accepted(bytes: &[u8], kind: Kind) -> Encoded {
    check(bytes, kind, &Rules::default()).unwrap_or_else(|refusal| panic!("{refusal}"))
}

pub(super) fn refusal(bytes: &[u8], kind: Kind) -> Refusal {
    check(bytes, kind, &Rules::default()).unwrap_err()
}

pub(super) fn decoded(png: &[u8]) -> RgbaImage {
    image::load_from_memory_with_format(png, ImageFormat::Png)
        .unwrap()
        .into_rgba8()
}

pub(super) fn decoded_frames(apng: &[u8]) -> Vec<RgbaImage> {
    let decoder = PngDecoder::new(Cursor::new(apng)).unwrap();
    let frames = decoder.apng().unwrap().into_frames().collect_frames();
    frames
        .unwrap()
        .into_iter()
        .map(|f| f.into_buffer())
        .collect()
}

/// `source` pasted unscaled at the centre of a transparent 512×512 canvas.
pub(super) fn centred(source: &RgbaImage) -> RgbaImage {
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
fn pixel_cost_is_the_peak_memory_of_the_decode_in_four_byte_pixels() {
    let still = pixel_cost(&png_of(&sticker(400, 300))).unwrap();
    let apng = pixel_cost(&apng_of(6, 400, 300, (1, 10))).unwrap();
    let webp = pixel_cost(&animated_webp_of(6, 400, 300, 100)).unwrap();

    // Our own work (canvas, encoders) is a fixed part; a still's rows go straight to it.
    assert!(still < 2_000_000, "{still}");
    // An animation is composited on a canvas of its size (400×300 of 4 bytes), one frame at a
    // time: no cost per frame.
    assert_eq!(apng, still + 120_000);
    assert_eq!(apng, pixel_cost(&apng_of(20, 400, 300, (1, 10))).unwrap());
    // The WebP decoder keeps a canvas of its own and hands out a copy, and decodes each frame
    // to a buffer of its own.
    assert!(webp >= apng + 2 * 120_000, "{webp} against {apng}");
    assert_eq!(pixel_cost(b"\xff\xd8\xff\xe0"), None);
    assert_eq!(pixel_cost(&PNG_SIGNATURE[..]), None);
}
