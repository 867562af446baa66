//! `make bench-thumbnails`: the thumbnail core against sharp (the seed's choice) and Pillow on the
//! shared corpus, in one run. Warm single-thread medians, SSIM against a full-resolution Lanczos3
//! reference, cold-process time and peak RSS, and the ratios the photo pipeline targets.
//!
//! Environment: BENCH_CORPUS (default ../shared/bench-corpus beside the repo), BENCH_ITERS (15),
//! BENCH_COLD_RUNS (7). Comparators are skipped, with a note, when not installed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use thumbnailer::render::{RenderOptions, render};

type Timings = BTreeMap<String, f64>;

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

fn rust_warm(files: &[PathBuf], out_dir: &Path, iterations: usize) -> Timings {
    let options = RenderOptions::default();
    let mut results = Timings::new();
    for file in files {
        let bytes = std::fs::read(file).unwrap();
        for _ in 0..2 {
            render(&bytes, &options).unwrap();
        }
        let mut times = Vec::new();
        let mut last = None;
        for _ in 0..iterations {
            let start = Instant::now();
            last = Some(render(&bytes, &options).unwrap());
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        std::fs::write(out_dir.join(format!("{name}.rust.jpg")), last.unwrap().jpeg).unwrap();
        results.insert(name, median(times));
    }
    results
}

fn run_json(command: &mut Command) -> Option<serde_json::Value> {
    let output = command.output().ok()?;
    if !output.status.success() {
        eprintln!(
            "comparator failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        return None;
    }
    serde_json::from_slice(output.stdout.trim_ascii()).ok()
}

fn comparator_warm(
    program: &Path,
    script: &Path,
    extra: &[&str],
    out_dir: &Path,
    iterations: usize,
    files: &[PathBuf],
) -> Option<Timings> {
    if !program.exists() {
        return None;
    }
    let mut command = Command::new(program);
    command
        .arg(script)
        .args(extra)
        .arg(out_dir)
        .arg(iterations.to_string())
        .args(files);
    let value = run_json(&mut command)?;
    Some(
        value
            .as_object()?
            .iter()
            .map(|(k, v)| (k.clone(), v.as_f64().unwrap_or(f64::NAN)))
            .collect(),
    )
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

/// Full-resolution decode, Lanczos3 straight to 200 px wide: the quality reference.
fn reference(file: &Path) -> image::RgbImage {
    let full = image::open(file).unwrap().to_rgb8();
    let (w, h) = full.dimensions();
    let (tw, th) = (
        200,
        ((u64::from(h) * 200 + u64::from(w) / 2) / u64::from(w)) as u32,
    );
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

fn quality(out_dir: &Path, name: &str, tool: &str, reference: &image::RgbImage) -> Option<f64> {
    let path = out_dir.join(format!("{name}.{tool}.jpg"));
    let image = image::open(path).ok()?.to_rgb8();
    Some(ssim(&image, reference))
}

fn main() {
    let repo = repo();
    let corpus = std::env::var("BENCH_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo.join("../shared/bench-corpus"));
    let iterations = env_or("BENCH_ITERS", 15usize);
    let cold_runs = env_or("BENCH_COLD_RUNS", 7usize);
    let out_dir = repo.join("target/bench-thumbnails");
    std::fs::create_dir_all(&out_dir).unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .unwrap_or_else(|e| panic!("corpus {} unreadable: {e}", corpus.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("jpg" | "png")))
        .collect();
    files.sort_by_key(|p| std::cmp::Reverse(std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)));

    let node = PathBuf::from("/usr/bin/node");
    let sharp_ready = repo.join("bench/node_modules/sharp").exists();
    let pillow_python = repo.join(".venv-bench/bin/python");
    let rust = rust_warm(&files, &out_dir, iterations);
    let sharp = if sharp_ready {
        comparator_warm(
            &node,
            &repo.join("bench/sharp.mjs"),
            &["warm"],
            &out_dir,
            iterations,
            &files,
        )
    } else {
        None
    };
    let pillow = comparator_warm(
        &pillow_python,
        &repo.join("bench/pillow.py"),
        &[],
        &out_dir,
        iterations,
        &files,
    );

    println!(
        "## Thumbnails: warm, single thread, median ms per image ({iterations} runs), 200 px wide JPEG q80\n"
    );
    println!(
        "| image | Rust core | sharp 0.35.5 | Pillow 13 | Rust/sharp | Rust/Pillow | SSIM Rust | SSIM sharp | SSIM Pillow |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let fmt = |v: Option<f64>, digits: usize| {
        v.map(|v| format!("{v:.digits$}"))
            .unwrap_or_else(|| "-".into())
    };
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let reference = reference(file);
        let r = rust.get(&name).copied();
        let s = sharp.as_ref().and_then(|t| t.get(&name).copied());
        let p = pillow.as_ref().and_then(|t| t.get(&name).copied());
        let ratio = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b);
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} |",
            fmt(r, 2),
            fmt(s, 2),
            fmt(p, 2),
            fmt(ratio(r, s), 2),
            fmt(ratio(r, p), 2),
            fmt(quality(&out_dir, &name, "rust", &reference), 4),
            fmt(quality(&out_dir, &name, "sharp", &reference), 4),
            fmt(quality(&out_dir, &name, "pillow", &reference), 4),
        );
    }

    // Cold process: start -> thumbnail of the 12 MP image written.
    let twelve = files
        .iter()
        .find(|f| f.to_string_lossy().contains("12mp"))
        .unwrap_or(&files[0])
        .clone();
    let measure = repo.join("bench/measure.py");
    let example = repo.join("target/release/examples/thumbnail_file");
    let out_rust = out_dir.join("cold.rust.jpg");
    let out_sharp = out_dir.join("cold.sharp.jpg");
    let rust_cold = example
        .exists()
        .then(|| cold(&measure, &[&example, &twelve, &out_rust], cold_runs))
        .flatten();
    let sharp_script = repo.join("bench/sharp.mjs");
    let once = PathBuf::from("once");
    let sharp_cold = sharp_ready
        .then(|| {
            cold(
                &measure,
                &[&node, &sharp_script, &once, &twelve, &out_sharp],
                cold_runs,
            )
        })
        .flatten();
    println!(
        "\n## Cold process ({}: start -> thumbnail written), median of {cold_runs}\n",
        twelve.file_name().unwrap().to_string_lossy()
    );
    println!("| | wall ms | peak RSS MB |\n|---|---|---|");
    for (label, value) in [
        ("Rust (thumbnail_file)", rust_cold),
        ("sharp (node)", sharp_cold),
    ] {
        println!(
            "| {label} | {} | {} |",
            fmt(value.map(|v| v.0), 1),
            fmt(value.map(|v| v.1), 1)
        );
    }
    if let (Some(r), Some(s)) = (rust_cold, sharp_cold) {
        println!(
            "\nRust/sharp: cold time {:.2}x, peak RSS {:.2}x",
            r.0 / s.0,
            r.1 / s.1
        );
    }
    if !sharp_ready || !pillow_python.exists() {
        println!("\n(comparators missing: run `make bench-thumbnails`, which installs them)");
    }
}
