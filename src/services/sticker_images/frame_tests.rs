//! Animations frame by frame (our APNG compositor against `image`'s, WebP frames at offsets,
//! frames outside their canvas), the resampler, and the memory a check holds against the
//! estimate the permit pool admits it by.

use super::tests::*;
use super::*;
use image::codecs::png::PngDecoder;
use image::DynamicImage;
use png::{BlendOp, DisposeOp};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// One frame of a hand-made APNG: where it goes, and how it is blended and disposed of.
struct Part {
    at: (u32, u32),
    image: RgbaImage,
    blend: BlendOp,
    dispose: DisposeOp,
}

fn part(at: (u32, u32), image: RgbaImage, blend: BlendOp, dispose: DisposeOp) -> Part {
    Part {
        at,
        image,
        blend,
        dispose,
    }
}

/// A `width`×`height` APNG of `parts`, after a default image outside the animation if given.
fn apng_of_parts(width: u32, height: u32, default: Option<&RgbaImage>, parts: &[Part]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_animated(parts.len() as u32, 0).unwrap();
    encoder.set_sep_def_img(default.is_some()).unwrap();
    let mut writer = encoder.write_header().unwrap();
    if let Some(image) = default {
        writer.write_image_data(image.as_raw()).unwrap();
    }
    for (i, part) in parts.iter().enumerate() {
        writer.reset_frame_position().unwrap();
        writer
            .set_frame_dimension(part.image.width(), part.image.height())
            .unwrap();
        writer.set_frame_position(part.at.0, part.at.1).unwrap();
        writer.set_blend_op(part.blend).unwrap();
        writer.set_dispose_op(part.dispose).unwrap();
        writer.set_frame_delay(10 + i as u16, 100).unwrap();
        writer.write_image_data(part.image.as_raw()).unwrap();
    }
    writer.finish().unwrap();
    out
}

/// A `width`×`height` patch: `colour`, its alpha fading to the right, with a hole in it.
fn patch(width: u32, height: u32, colour: [u8; 3]) -> RgbaImage {
    RgbaImage::from_fn(width, height, |x, y| {
        let alpha = 255 - (x * 200 / width) as u8;
        if (x + y) % 7 == 0 {
            Rgba([9, 9, 9, 0])
        } else {
            Rgba([colour[0], colour[1], colour[2], alpha])
        }
    })
}

/// Every way a frame can be drawn and disposed of, in the orders that matter: Previous after
/// None, after Background and after Previous; blending over partial alpha.
fn tricky_parts(scale: u32) -> Vec<Part> {
    let s = |v: u32| v * scale;
    vec![
        // Whole canvas, as a first frame must be, with a transparent margin.
        part(
            (0, 0),
            RgbaImage::from_fn(s(120), s(100), |x, y| {
                let inside = (s(3)..s(117)).contains(&x) && (s(3)..s(97)).contains(&y);
                let pixel = *patch(1, 1, [200, 40, 40]).get_pixel(0, 0);
                if inside && (x + y) % 5 != 0 {
                    Rgba([pixel[0], pixel[1], pixel[2], (x % 256) as u8])
                } else {
                    CLEAR
                }
            }),
            BlendOp::Source,
            DisposeOp::None,
        ),
        part(
            (s(10), s(10)),
            patch(s(50), s(40), [20, 20, 220]),
            BlendOp::Over,
            DisposeOp::Previous,
        ),
        part(
            (s(30), s(20)),
            patch(s(60), s(50), [20, 200, 20]),
            BlendOp::Source,
            DisposeOp::Background,
        ),
        part(
            (s(20), s(30)),
            patch(s(80), s(60), [240, 240, 0]),
            BlendOp::Over,
            DisposeOp::Previous,
        ),
        part(
            (s(40), s(30)),
            patch(s(20), s(20), [0, 200, 200]),
            BlendOp::Over,
            DisposeOp::Previous,
        ),
        part(
            (s(4), s(6)),
            patch(s(30), s(30), [90, 0, 90]),
            BlendOp::Source,
            DisposeOp::None,
        ),
    ]
}

/// Whole canvases and delays as `image`'s APNG decoder gives them.
fn frames_by_image(apng: &[u8]) -> Vec<(RgbaImage, u32)> {
    let decoder = PngDecoder::new(Cursor::new(apng)).unwrap();
    let frames = decoder.apng().unwrap().into_frames().collect_frames();
    frames
        .unwrap()
        .into_iter()
        .map(|f| (f.buffer().clone(), delay_ms(f.delay())))
        .collect()
}

fn frames_by_us(apng: &[u8]) -> Vec<(RgbaImage, u32)> {
    let mut stream = ApngFrames::new(apng, &decode_limits(&Rules::default())).unwrap();
    let mut frames = Vec::new();
    while let Some(frame) = stream.next_frame() {
        let (canvas, delay) = frame.unwrap();
        frames.push((canvas.clone(), delay));
    }
    frames
}

#[test]
fn apng_frames_are_composited_as_image_composites_them() {
    let parts = tricky_parts(1);
    let default = patch(120, 100, [1, 2, 3]);

    for apng in [
        apng_of_parts(120, 100, None, &parts),
        apng_of_parts(120, 100, Some(&default), &parts),
    ] {
        let ours = frames_by_us(&apng);

        assert_eq!(ours.len(), parts.len());
        for (i, (ours, theirs)) in ours.iter().zip(frames_by_image(&apng)).enumerate() {
            assert!(ours.0 == theirs.0, "frame {i} differs");
            assert_eq!(ours.1, theirs.1, "delay of frame {i}");
        }
    }
}

#[test]
fn apng_with_dispose_previous_and_offsets_is_accepted_as_composited() {
    let apng = apng_of_parts(120, 100, None, &tricky_parts(1));

    let encoded = accepted(&apng, Kind::Animated);

    let expected: Vec<RgbaImage> = frames_by_image(&apng)
        .iter()
        .map(|(frame, _)| {
            let mut frame = frame.clone();
            clear_hidden_colour(&mut frame);
            centred(&frame)
        })
        .collect();
    assert_eq!(decoded_frames(&encoded.image), expected);
    assert_eq!(encoded.duration_ms, 100 + 110 + 120 + 130 + 140 + 150);
}

/// An animated WebP of lossless `frames` at their offsets (even, as WebP stores them halved),
/// blended over what is below.
fn animated_webp_of_parts(width: u32, height: u32, frames: &[((u32, u32), RgbaImage)]) -> Vec<u8> {
    let mut chunks = vec![vp8x(0x12, width, height), riff_chunk(b"ANIM", &[0; 6])];
    for ((x, y), image) in frames {
        let still = webp_of(image);
        let mut anmf = Vec::new();
        anmf.extend(le24_bytes(x / 2));
        anmf.extend(le24_bytes(y / 2));
        anmf.extend(le24_bytes(image.width() - 1));
        anmf.extend(le24_bytes(image.height() - 1));
        anmf.extend(le24_bytes(100));
        anmf.push(0); // blend over the canvas, no disposal
        anmf.extend(&still[12..]);
        chunks.push(riff_chunk(b"ANMF", &anmf));
    }
    riff(&chunks)
}

#[test]
fn animated_webp_with_frame_offsets_gives_what_image_composites() {
    let frames: Vec<((u32, u32), RgbaImage)> = (0..5)
        .map(|i| {
            (
                (10 + 8 * i, 12 + 4 * i),
                patch(60, 40, [40 * i as u8, 90, 200]),
            )
        })
        .collect();
    let webp = animated_webp_of_parts(150, 110, &frames);
    // The same animation as whole canvases, composited by `image`.
    let canvases: Vec<RgbaImage> = WebPDecoder::new(Cursor::new(&webp))
        .unwrap()
        .into_frames()
        .map(|frame| frame.unwrap().into_buffer())
        .collect();
    let mut apng = Vec::new();
    let mut encoder = png::Encoder::new(&mut apng, 150, 110);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_animated(5, 0).unwrap();
    encoder.set_frame_delay(1, 10).unwrap();
    let mut writer = encoder.write_header().unwrap();
    for canvas in &canvases {
        writer.write_image_data(canvas.as_raw()).unwrap();
    }
    writer.finish().unwrap();

    assert_eq!(
        accepted(&webp, Kind::Animated),
        accepted(&apng, Kind::Animated)
    );
}

#[test]
fn frames_outside_their_canvas_are_refused_from_the_headers() {
    // A frame 60 px wide at x = 100 of a 150-px canvas.
    let webp = animated_webp_of_parts(150, 110, &[((100, 0), patch(60, 40, [1, 2, 3]))]);
    let fctl = |sequence: u32, (w, h, x, y): (u32, u32, u32, u32)| {
        let fields = [sequence, w, h, x, y].map(u32::to_be_bytes).concat();
        png_chunk(b"fcTL", &[fields.as_slice(), &[0, 1, 0, 10, 0, 0]].concat())
    };
    let apng = [
        PNG_SIGNATURE.to_vec(),
        ihdr(120, 100, 0),
        png_chunk(b"acTL", &[0, 0, 0, 5, 0, 0, 0, 0]),
        fctl(0, (120, 100, 0, 0)),
        png_chunk(b"IDAT", &[0x78, 0x01]),
        fctl(1, (50, 40, 100, 10)),
        png_chunk(b"IEND", &[]),
    ]
    .concat();

    for (bytes, what) in [(webp, "animation frame 1"), (apng, "frame 2")] {
        let refused = refusal(&bytes, Kind::Animated);
        assert_eq!(refused.code, Refusal::IMAGE_CORRUPT);
        assert!(refused.detail.contains(what), "{}", refused.detail);
        assert!(refused.detail.contains("outside"), "{}", refused.detail);
    }
}

#[test]
fn animation_needing_more_memory_than_a_sticker_may_take_is_refused_before_decoding() {
    // A 4096×4096 WebP canvas: the decoder's canvas and the copy it hands out are 128 MiB,
    // the decoder memory bound, before any frame.
    let tiny = webp_of(&sticker(8, 8));
    let anmf = [
        [0u8; 6].as_slice(),
        &le24_bytes(7),
        &le24_bytes(7),
        &le24_bytes(100),
        &[2],
        &tiny[12..],
    ]
    .concat();
    let frames = vec![riff_chunk(b"ANMF", &anmf); 5];
    let webp = riff(&[[vp8x(0x12, 4096, 4096)].as_slice(), &frames].concat());

    let refused = refusal(&webp, Kind::Animated);

    assert_eq!(refused.code, Refusal::IMAGE_TOO_LARGE);
}

#[test]
fn resampling_to_the_same_size_changes_nothing() {
    let mut source = patch(90, 70, [200, 100, 50]);
    clear_hidden_colour(&mut source);
    let mut out = RgbaImage::new(90, 70);

    resample(
        &mut rows_of(&source),
        Filter::CatmullRom,
        &mut out,
        (0, 0, 90, 70),
    )
    .unwrap();

    assert!(out == source);
}

#[test]
fn shrinking_by_a_whole_factor_is_area_averaging() {
    let canvas = fit_to_canvas(&mut rows_of(&patch(500, 420, [200, 100, 50])), 512).unwrap();
    let mut averaged = RgbaImage::new(128, 128);
    resample(
        &mut rows_of(&canvas),
        Filter::Box,
        &mut averaged,
        (0, 0, 128, 128),
    )
    .unwrap();

    let shrunk = shrink(&canvas, 4);

    for (a, b) in shrunk.pixels().zip(averaged.pixels()) {
        assert!(
            a.0.iter().zip(b.0).all(|(a, b)| a.abs_diff(b) <= 1),
            "{a:?} {b:?}"
        );
    }
}

#[test]
fn opaque_span_finds_the_first_and_last_visible_pixel() {
    for width in [1usize, 7, 16, 17, 33, 64] {
        for (lo, hi) in [
            (0, 1),
            (0, width),
            (width - 1, width),
            (width / 2, width / 2 + 1),
        ] {
            let mut row = vec![5u8; width * 4];
            for (i, pixel) in row.chunks_exact_mut(4).enumerate() {
                pixel[3] = u8::from((lo..hi).contains(&i));
            }
            assert_eq!(opaque_span(&row), Some((lo, hi)), "{width} {lo}..{hi}");
        }
        let clear: Vec<u8> = (0..width).flat_map(|_| [5, 5, 5, 0]).collect();
        assert_eq!(opaque_span(&clear), None);
    }
}

// The allocator of this test binary counts what each thread holds, so that a check's peak can
// be measured while other tests run on other threads.
struct Counting;

thread_local! {
    static HELD: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    let _ = HELD.try_with(|held| {
        let now = held.get() + delta;
        held.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call goes to the system allocator unchanged; only sizes are counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            count(layout.size() as isize);
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if !pointer.is_null() {
            count(layout.size() as isize);
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        unsafe { System.dealloc(pointer, layout) };
        count(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, size: usize) -> *mut u8 {
        let moved = unsafe { System.realloc(pointer, layout, size) };
        if !moved.is_null() {
            count(size as isize - layout.size() as isize);
        }
        moved
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// The most `check` of `bytes` holds at once beyond what this thread held before. Output over
/// its limit is fine: everything was decoded.
fn peak_of_check(bytes: &[u8], kind: Kind) -> u64 {
    let before = HELD.with(Cell::get);
    PEAK.with(|peak| peak.set(before));
    match check(bytes, kind, &Rules::default()) {
        Err(refusal) if refusal.code != Refusal::OUTPUT_TOO_LARGE => panic!("{refusal}"),
        _ => {}
    }
    (PEAK.with(Cell::get) - before) as u64
}

#[test]
fn decode_memory_stays_within_its_estimate() {
    let wide = DynamicImage::ImageRgba8(sticker(900, 700)).into_rgba16();
    let mut png16 = Cursor::new(Vec::new());
    wide.write_to(&mut png16, ImageFormat::Png).unwrap();
    let uploads = [
        (
            "PNG to scale down",
            png_of(&sticker(1400, 1000)),
            Kind::Static,
        ),
        ("16-bit PNG", png16.into_inner(), Kind::Static),
        (
            "interlaced PNG",
            interlaced_png_of(&sticker(700, 500)),
            Kind::Static,
        ),
        ("lossless WebP", webp_of(&sticker(1200, 900)), Kind::Static),
        ("APNG", apng_of(6, 1000, 800, (1, 10)), Kind::Animated),
        (
            "APNG disposing to the previous frame",
            apng_of_parts(960, 800, None, &tricky_parts(8)),
            Kind::Animated,
        ),
        (
            "animated WebP",
            animated_webp_of(5, 900, 700, 100),
            Kind::Animated,
        ),
    ];

    for (what, bytes, kind) in uploads {
        let admitted = pixel_cost(&bytes).unwrap() * 4;

        let peak = peak_of_check(&bytes, kind);

        eprintln!("{what}: held {peak} bytes, admitted by {admitted}");
        assert!(
            peak <= admitted,
            "{what}: held {peak} bytes, admitted by {admitted}"
        );
    }
}
