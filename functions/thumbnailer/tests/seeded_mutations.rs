//! The fuzz targets' properties (fuzz/fuzz_targets/checks.rs) over seeded mutations of one file
//! of every accepted kind: `make test`'s short, deterministic stand-in for `make fuzz-thumbnails`
//! (cargo-fuzz, minutes a target), without its separate instrumented build.
//!
//! One test in its own binary: the counting allocator measures the whole process, so nothing
//! else may allocate beside it.

use thumbnailer::{jpeg_dc, render};

#[path = "../fuzz/fuzz_targets/checks.rs"]
mod checks;

#[global_allocator]
static ALLOCATOR: checks::Counting = checks::Counting;

/// xorshift64*: deterministic, so a failure names a reproducible mutant.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A photo-like picture: gradients and a texture, with an alpha ramp.
fn rgba(width: u32, height: u32) -> image::RgbaImage {
    image::RgbaImage::from_fn(width, height, |x, y| {
        let noise = ((x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) % 23) as u8;
        image::Rgba([
            (x * 255 / width) as u8 ^ noise,
            (y * 255 / height) as u8,
            noise * 9,
            (x * 255 / width) as u8 | 0x1F,
        ])
    })
}

fn encoded(image: image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// One small file of each kind: the JPEG fixtures (libjpeg-turbo's sampling, progressive,
/// restarts, gray; what the fuzzer found), and PNG, GIF and WebP written here.
fn seeds() -> Vec<(String, Vec<u8>)> {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut seeds: Vec<(String, Vec<u8>)> = ["", "fuzz"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(fixtures.join(dir)).unwrap())
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "jpg"))
        .map(|path| (path.display().to_string(), std::fs::read(&path).unwrap()))
        .collect();
    let picture = image::DynamicImage::ImageRgba8(rgba(260, 170));
    seeds.push((
        "png".into(),
        encoded(picture.clone(), image::ImageFormat::Png),
    ));
    seeds.push((
        "gif".into(),
        encoded(picture.clone(), image::ImageFormat::Gif),
    ));
    seeds.push(("webp".into(), encoded(picture, image::ImageFormat::WebP)));
    seeds.sort();
    seeds
}

/// Flipped bits, overwritten bytes, cut tails, repeated and dropped runs: what corrupt uploads
/// and a mutation fuzzer produce, from a seed.
fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(data.len());
        match rng.below(5) {
            0 => data[at] ^= 1 << rng.below(8),
            1 => data[at] = [0x00, 0xFF, 0x7F, 0x80][rng.below(4)],
            2 => data.truncate(at.max(2)),
            3 => {
                let run: Vec<u8> = data[at..(at + rng.below(64)).min(data.len())].to_vec();
                data.splice(at..at, run);
            }
            _ => {
                let end = (at + rng.below(64)).min(data.len());
                data.drain(at..end);
            }
        }
        if data.is_empty() {
            data.push(0xFF);
        }
    }
    data
}

#[test]
fn every_mutant_is_an_error_or_a_bounded_thumbnail() {
    const MUTANTS_PER_SEED: usize = 150;
    let mut rng = Rng(20_261_202);
    let mut rendered = 0;
    for (name, seed) in seeds() {
        checks::jpeg_dc_holds(&seed);
        checks::render_holds(&seed);
        assert!(
            render::render(&seed, &render::RenderOptions::default()).is_ok()
                || name.contains("fuzz"),
            "seed {name} renders"
        );
        for i in 0..MUTANTS_PER_SEED {
            let mutant = mutate(&seed, &mut rng);
            let check = std::panic::catch_unwind(|| {
                checks::jpeg_dc_holds(&mutant);
                checks::render_holds(&mutant);
            });
            if check.is_err() {
                let path = std::env::temp_dir().join(format!("thumbnailer-mutant-{i}.bin"));
                std::fs::write(&path, &mutant).unwrap();
                panic!("mutant {i} of {name} broke a property: {}", path.display());
            }
            rendered +=
                usize::from(render::render(&mutant, &render::RenderOptions::default()).is_ok());
        }
    }
    // Mutants that still decode exercise the decoders past their headers, not just the sniffing.
    assert!(rendered > 100, "only {rendered} mutants rendered");
}
