//! `make bench-thumbnails`: the thumbnail core against sharp and Pillow on every kind of input
//! the thumbnailer accepts (bench/make_corpus.py: baseline JPEG at five samplings, progressive,
//! restart intervals, gray, CMYK, EXIF-rotated, 2-48 MP; PNG 8/16-bit with alpha; WebP; GIF), all
//! three tools in one run and interleaved: every iteration runs each file through each tool in
//! turn (the order rotating), so load on the machine moves them together. Warm single-thread
//! medians, SSIM against a full-resolution reference that applies orientation and flattens
//! alpha on white as the thumbnailer does, the targets of issue 16 per row, cold-process time and
//! peak RSS.
//!
//! Environment: BENCH_CORPUS (any folder of images; default target/bench-corpus, which the
//! Makefile generates), BENCH_ITERS (9), BENCH_COLD_RUNS (5). A tool failing on a file fails the
//! run: that is a comparator (or thumbnailer) bug, not a row to skip.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageReader};
use thumbnailer::render::{RenderOptions, cmyk_to_rgb, flatten_on_white, render};

const TOOLS: [&str; 3] = ["rust", "sharp", "pillow"];
const ACCEPTED: [&str; 5] = ["jpg", "jpeg", "png", "webp", "gif"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A comparator process answering one thumbnail request a line (bench/sharp.mjs, bench/pillow.py
/// in `serve` mode): it stays warm for the whole run.
struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Server {
    fn start(program: &Path, script: &Path) -> Result<Self, String> {
        let mut child = Command::new(program)
            .arg(script)
            .arg("serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{}: {e}", program.display()))?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        Ok(Self {
            child,
            stdin,
            stdout,
        })
    }

    fn thumbnail(&mut self, file: &Path, out: &Path) -> Result<f64, String> {
        let request = serde_json::json!({"file": file, "out": out});
        writeln!(self.stdin, "{request}").map_err(|e| e.to_string())?;
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let answer: serde_json::Value = serde_json::from_str(&line)
            .map_err(|_| format!("no answer for {} (see its stderr above)", file.display()))?;
        answer["ms"].as_f64().ok_or_else(|| line.clone())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn rust_thumbnail(file: &Path, out: &Path) -> Result<f64, String> {
    let bytes = std::fs::read(file).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let thumbnail = render(&bytes, &RenderOptions::default()).map_err(|e| e.to_string())?;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    std::fs::write(out, thumbnail.jpeg).map_err(|e| e.to_string())?;
    Ok(ms)
}

fn run_json(command: &mut Command) -> Option<serde_json::Value> {
    let output = command.output().ok()?;
    if !output.status.success() {
        eprintln!(
            "command failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        return None;
    }
    serde_json::from_slice(output.stdout.trim_ascii()).ok()
}

/// Median wall time and max peak RSS of `runs` fresh processes.
fn cold(measure: &Path, command: &[&Path], runs: usize) -> Option<(f64, f64)> {
    let mut times = Vec::new();
    let mut rss: f64 = 0.0;
    for _ in 0..runs {
        let value = run_json(Command::new("python3").arg(measure).args(command))?;
        times.push(value["ms"].as_f64()?);
        rss = rss.max(value["max_rss_kb"].as_f64()? / 1024.0);
    }
    Some((median(times), rss))
}

fn luma(image: &image::RgbImage) -> Vec<f64> {
    image
        .pixels()
        .map(|p| 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]))
        .collect()
}

/// Mean SSIM of the luma planes over 8x8 windows (stride 4), cropped to the common size.
fn ssim(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    let (w, h) = (
        a.width().min(b.width()) as usize,
        a.height().min(b.height()) as usize,
    );
    let (la, lb) = (luma(a), luma(b));
    let (wa, wb) = (a.width() as usize, b.width() as usize);
    let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
    let mut total = 0.0;
    let mut count = 0.0;
    for y in (0..h.saturating_sub(7)).step_by(4) {
        for x in (0..w.saturating_sub(7)).step_by(4) {
            let (mut sa, mut sb, mut saa, mut sbb, mut sab) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for dy in 0..8 {
                for dx in 0..8 {
                    let va = la[(y + dy) * wa + x + dx];
                    let vb = lb[(y + dy) * wb + x + dx];
                    sa += va;
                    sb += vb;
                    saa += va * va;
                    sbb += vb * vb;
                    sab += va * vb;
                }
            }
            let n = 64.0;
            let (ma, mb) = (sa / n, sb / n);
            let (va, vb, cov) = (saa / n - ma * ma, sbb / n - mb * mb, sab / n - ma * mb);
            total += ((2.0 * ma * mb + c1) * (2.0 * cov + c2))
                / ((ma * ma + mb * mb + c1) * (va + vb + c2));
            count += 1.0;
        }
    }
    total / count
}

/// The full-resolution image as the thumbnailer shows it: EXIF orientation applied, CMYK as
/// inks on white paper, alpha flattened on white. JPEGs through jpeg-decoder (the thumbnailer's
/// general JPEG decoder), the rest through the image crate.
fn upright(file: &Path) -> image::RgbImage {
    let bytes = std::fs::read(file).unwrap();
    let (image, orientation) = if image::guess_format(&bytes).ok() == Some(image::ImageFormat::Jpeg)
    {
        let mut decoder = jpeg_decoder::Decoder::new(&bytes[..]);
        let data = decoder.decode().unwrap();
        let info = decoder.info().unwrap();
        let (w, h) = (u32::from(info.width), u32::from(info.height));
        let rgb = match info.pixel_format {
            jpeg_decoder::PixelFormat::L8 => data.iter().flat_map(|&v| [v, v, v]).collect(),
            jpeg_decoder::PixelFormat::CMYK32 => cmyk_to_rgb(&data),
            _ => data,
        };
        let orientation = decoder
            .exif_data()
            .and_then(Orientation::from_exif_chunk)
            .unwrap_or(Orientation::NoTransforms);
        (
            DynamicImage::ImageRgb8(image::RgbImage::from_raw(w, h, rgb).unwrap()),
            orientation,
        )
    } else {
        let mut decoder = ImageReader::new(std::io::Cursor::new(&bytes))
            .with_guessed_format()
            .unwrap()
            .into_decoder()
            .unwrap();
        let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
        let image = DynamicImage::from_decoder(decoder).unwrap();
        let image = if image.color().has_alpha() {
            let rgba = image.to_rgba8();
            let (w, h) = rgba.dimensions();
            DynamicImage::ImageRgb8(
                image::RgbImage::from_raw(w, h, flatten_on_white(&rgba)).unwrap(),
            )
        } else {
            DynamicImage::ImageRgb8(image.to_rgb8())
        };
        (image, orientation)
    };
    let mut image = image;
    image.apply_orientation(orientation);
    image.to_rgb8()
}

/// The quality reference: the upright full-resolution image, Lanczos3 straight to 200 px wide
/// (or its own width if narrower).
fn reference(file: &Path) -> image::RgbImage {
    let full = upright(file);
    let (w, h) = full.dimensions();
    let tw = w.min(200);
    let th = ((u64::from(h) * u64::from(tw) + u64::from(w) / 2) / u64::from(w)).max(1) as u32;
    let src = Image::from_vec_u8(w, h, full.into_raw(), PixelType::U8x3).unwrap();
    let mut dst = Image::new(tw, th, PixelType::U8x3);
    Resizer::new()
        .resize(
            &src,
            &mut dst,
            &ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3)),
        )
        .unwrap();
    image::RgbImage::from_raw(tw, th, dst.into_vec()).unwrap()
}

fn output(out_dir: &Path, name: &str, tool: &str) -> PathBuf {
    out_dir.join(format!("{name}.{tool}.jpg"))
}

fn quality(path: &Path, reference: &image::RgbImage) -> Option<f64> {
    let image = image::open(path).ok()?.to_rgb8();
    Some(ssim(&image, reference))
}

fn main() {
    let repo = repo();
    let corpus = std::env::var("BENCH_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo.join("target/bench-corpus"));
    let iterations = env_or("BENCH_ITERS", 9usize);
    let cold_runs = env_or("BENCH_COLD_RUNS", 5usize);
    let out_dir = repo.join("target/bench-thumbnails");
    std::fs::create_dir_all(&out_dir).unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .unwrap_or_else(|e| panic!("corpus {} unreadable: {e}", corpus.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| ACCEPTED.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    files.sort();

    let node = PathBuf::from("/usr/bin/node");
    let mut sharp = Server::start(&node, &repo.join("bench/sharp.mjs")).expect("sharp");
    let mut pillow = Server::start(
        &repo.join(".venv-bench/bin/python"),
        &repo.join("bench/pillow.py"),
    )
    .expect("Pillow");
    let name_of = |f: &Path| f.file_name().unwrap().to_string_lossy().to_string();
    // times[tool][file]; round 0 warms every tool up on every file and is not counted.
    let mut times: BTreeMap<(&str, String), Vec<f64>> = BTreeMap::new();
    let mut failures = Vec::new();
    for round in 0..=iterations {
        for (index, file) in files.iter().enumerate() {
            let name = name_of(file);
            for turn in 0..TOOLS.len() {
                let tool = TOOLS[(round + index + turn) % TOOLS.len()];
                let out = output(&out_dir, &name, tool);
                let result = match tool {
                    "rust" => rust_thumbnail(file, &out),
                    "sharp" => sharp.thumbnail(file, &out),
                    _ => pillow.thumbnail(file, &out),
                };
                match result {
                    Ok(ms) if round > 0 => times.entry((tool, name.clone())).or_default().push(ms),
                    Ok(_) => {}
                    Err(e) if round == 0 => failures.push(format!("{tool} on {name}: {e}")),
                    Err(_) => {}
                }
            }
        }
    }

    println!(
        "## Thumbnails: warm, single thread, median ms per image ({iterations} interleaved rounds), 200 px wide JPEG q80\n"
    );
    println!(
        "| image | Rust core | sharp 0.35.5 | Pillow 13 | Rust/sharp | Rust/Pillow | SSIM Rust | SSIM sharp | SSIM Pillow | targets |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let fmt = |v: Option<f64>, digits: usize| {
        v.map(|v| format!("{v:.digits$}"))
            .unwrap_or_else(|| "FAILED".into())
    };
    let mut missed = 0;
    for file in &files {
        let name = name_of(file);
        let reference = reference(file);
        let time = |tool: &'static str| times.get(&(tool, name.clone())).map(|t| median(t.clone()));
        let (r, s, p) = (time("rust"), time("sharp"), time("pillow"));
        let ssim_of = |tool| quality(&output(&out_dir, &name, tool), &reference);
        let (qr, qs, qp) = (ssim_of("rust"), ssim_of("sharp"), ssim_of("pillow"));
        let ratio = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b);
        let jpeg = matches!(
            file.extension().and_then(|e| e.to_str()),
            Some("jpg" | "jpeg")
        );
        let sharp_target = if jpeg { 0.75 } else { 1.0 };
        let met = ratio(r, s).is_some_and(|x| x <= sharp_target)
            && ratio(r, p).is_some_and(|x| x <= 0.9)
            && qr.zip(qp).is_some_and(|(r, p)| r >= p - 0.005);
        missed += usize::from(!met);
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            fmt(r, 2),
            fmt(s, 2),
            fmt(p, 2),
            fmt(ratio(r, s), 2),
            fmt(ratio(r, p), 2),
            fmt(qr, 4),
            fmt(qs, 4),
            fmt(qp, 4),
            if met { "met" } else { "missed" },
        );
    }
    println!(
        "\nTargets: JPEG Rust <= 0.75x sharp, others <= 1.0x sharp; all <= 0.9x Pillow; SSIM >= Pillow's - 0.005. Missed: {missed} of {}.",
        files.len()
    );

    // Cold processes: start -> thumbnail written, and peak RSS, for the 12 MP baseline and the
    // 12 and 48 MP progressive JPEGs.
    let measure = repo.join("bench/measure.py");
    let example = repo.join("target/release/examples/thumbnail_file");
    let sharp_script = repo.join("bench/sharp.mjs");
    let once = PathBuf::from("once");
    println!("\n## Cold process (start -> thumbnail written), median of {cold_runs}\n");
    println!("| image | Rust wall ms | Rust peak RSS MB | sharp wall ms | sharp peak RSS MB |");
    println!("|---|---|---|---|---|");
    for wanted in [
        "jpeg-12mp-420.jpg",
        "jpeg-12mp-progressive.jpg",
        "jpeg-48mp-progressive.jpg",
    ] {
        let Some(file) = files.iter().find(|f| name_of(f) == wanted) else {
            continue;
        };
        let out_rust = out_dir.join("cold.rust.jpg");
        let out_sharp = out_dir.join("cold.sharp.jpg");
        let rust = cold(&measure, &[&example, file, &out_rust], cold_runs);
        let sharp = cold(
            &measure,
            &[&node, &sharp_script, &once, file, &out_sharp],
            cold_runs,
        );
        println!(
            "| {wanted} | {} | {} | {} | {} |",
            fmt(rust.map(|v| v.0), 1),
            fmt(rust.map(|v| v.1), 1),
            fmt(sharp.map(|v| v.0), 1),
            fmt(sharp.map(|v| v.1), 1)
        );
    }
    assert!(
        failures.is_empty(),
        "a tool failed on a file (fix the comparator or the thumbnailer):\n{}",
        failures.join("\n")
    );
}
