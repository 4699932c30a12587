//! Sticker-pack benchmarks' inputs and in-process measures: validating and storing a pack of
//! different stickers against decoding the same files with `image` alone; the worst animated
//! archive the limits allow; a bare `actix-files` server for the blob baseline.

use kopilka::services::blobs::{BlobSettings, Blobs};
use kopilka::services::sticker_images::{self, Kind, Rules};
use std::io::Write;
use std::time::{Duration, Instant};

/// `n` different stickers: each its own size, colours and shape, so no two files (and no two
/// outputs) are alike and nothing is helped by deduplication.
fn stickers(n: u32) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let (w, h) = (360 + i * 7, 320 + (i * 13) % 150);
            let img = image::RgbaImage::from_fn(w, h, |x, y| {
                let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
                let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
                if d < cx.min(cy) * 0.8 {
                    let v = ((x * (i + 3) + y * 5) % 256) as u8;
                    image::Rgba([v, (i * 6) as u8, 255 - v, 255])
                } else {
                    image::Rgba([0, 0, 0, 0])
                }
            });
            let mut out = std::io::Cursor::new(Vec::new());
            img.write_to(&mut out, image::ImageFormat::Png)
                .expect("png");
            out.into_inner()
        })
        .collect()
}

/// Packs/s of validating, re-encoding and storing `n` different stickers, against decoding the
/// same files with `image` alone, alternating `rounds` times; prints both and their ratio.
pub fn validate(n: u32, rounds: u32) -> anyhow::Result<()> {
    let files = stickers(n);
    let dir = tempfile::tempdir()?;
    let blobs = Blobs::from_settings(&BlobSettings::Local {
        dir: dir.path().to_string_lossy().into_owned(),
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let rules = Rules::default();
    let (mut ours, mut base) = (Vec::new(), Vec::new());
    let mut stored_bytes = 0usize;
    for _ in 0..rounds {
        let t = Instant::now();
        for f in &files {
            let img = image::load_from_memory(f)?.to_rgba8();
            std::hint::black_box(img);
        }
        base.push(t.elapsed());
        let t = Instant::now();
        stored_bytes = 0;
        for f in &files {
            let encoded = sticker_images::check(f, Kind::Static, &rules)
                .map_err(|r| anyhow::anyhow!("refused: {r}"))?;
            stored_bytes += encoded.image.len() + encoded.thumbnail.len();
            runtime.block_on(async {
                blobs.put(encoded.image.into()).await?;
                blobs.put(encoded.thumbnail.into()).await
            })?;
        }
        ours.push(t.elapsed());
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (o, b) = (median(&mut ours), median(&mut base));
    let per_s = |d: Duration| 1.0 / d.as_secs_f64();
    println!(
        "validate+store: {:.2} packs/s; image decode alone: {:.2} packs/s; ratio {:.2}",
        per_s(o),
        per_s(b),
        per_s(o) / per_s(b)
    );
    println!(
        "stored per sticker (image and thumbnail): {:.1} KB",
        stored_bytes as f64 / f64::from(n) / 1000.0
    );
    Ok(())
}

/// The worst animated archive the limits allow: `n` APNGs of `side` px (the largest an
/// animation's decode fits the decoder's memory bound at), the most frames, each frame different but compressible (so the upload is small and the decode is
/// not).
pub fn worst_animated(n: u32, side: u32, out: &std::path::Path) -> anyhow::Result<()> {
    let rules = Rules::default();
    let mut manifest = String::from(
        "title = \"Worst case\"\ndescription = \"Largest canvas, most frames.\"\nkind = \"animated\"\n",
    );
    let mut zip = zip::ZipWriter::new(std::fs::File::create(out)?);
    let opts = zip::write::SimpleFileOptions::default();
    // One such image, in every entry: each is decoded on its own (what is measured); only the
    // blob store sees them as one.
    let mut png = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png, side, side);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_animated(rules.max_frames, 0)?;
        // 20 frames of 1/5 s: 4 s, the longest loop allowed.
        encoder.set_frame_delay(1, 5)?;
        encoder.set_compression(png::Compression::High);
        let mut writer = encoder.write_header()?;
        for f in 0..rules.max_frames {
            // A block that moves: opaque inside, the transparent border the rules ask for.
            let frame: Vec<u8> = (0..side * side)
                .flat_map(|p| {
                    let (x, y) = (p % side, p / side);
                    let inside = x > 200 + f * 10 && x < side - 200 && y > 200 && y < side - 200;
                    if inside {
                        [200, (f * 12) as u8, 128, 255]
                    } else {
                        [0, 0, 0, 0]
                    }
                })
                .collect();
            writer.write_image_data(&frame)?;
        }
        writer.finish()?;
    }
    for i in 0..n {
        let name = format!("{:02}.png", i + 1);
        zip.start_file(name.as_str(), opts)?;
        zip.write_all(&png)?;
        manifest.push_str(&format!(
            "\n[[stickers]]\nfile = \"{name}\"\nemoji = \"😀\"\n"
        ));
    }
    eprintln!("one sticker: {} bytes", png.len());
    zip.start_file("pack.toml", opts)?;
    zip.write_all(manifest.as_bytes())?;
    zip.finish()?;
    Ok(())
}

/// A bare actix-files server of `dir` (the baseline for serving blobs).
pub fn files(dir: &str, port: u16) -> anyhow::Result<()> {
    let dir = dir.to_owned();
    actix_web::rt::System::new().block_on(async move {
        actix_web::HttpServer::new(move || {
            actix_web::App::new().service(actix_files::Files::new("/files", dir.clone()))
        })
        .bind(("127.0.0.1", port))?
        .run()
        .await
    })?;
    Ok(())
}
