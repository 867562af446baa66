//! The properties the thumbnailer's decode path keeps on any bytes, for the fuzz targets and for
//! `cargo test`'s seeded mutations: never a panic (a hang is libFuzzer's `-timeout`), and never
//! more memory than the scaled image needs, whatever the header and the scans claim, measured by
//! a counting global allocator the including binary installs.
//!
//! Included by path (`#[path]`), next to `jpeg_dc` and `render` modules of the includer's.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{jpeg_dc, render};

/// Counts live bytes and the peak since the last [`reset_peak`].
pub struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        unsafe { System.dealloc(pointer, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let moved = unsafe { System.realloc(pointer, layout, new_size) };
        if !moved.is_null() {
            if new_size >= layout.size() {
                let live = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size
                    - layout.size();
                PEAK.fetch_max(live, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        moved
    }
}

/// Starts measuring one input: the peak becomes what is live now.
pub fn reset_peak() -> usize {
    let live = LIVE.load(Ordering::Relaxed);
    PEAK.store(live, Ordering::Relaxed);
    live
}

/// Bytes allocated above `baseline` at the peak since [`reset_peak`].
pub fn peak_above(baseline: usize) -> usize {
    PEAK.load(Ordering::Relaxed).saturating_sub(baseline)
}

/// What the shrink-on-load path may hold for a frame of `width` x `height` at `scale`: per 8x8
/// block (padded to MCUs of up to 32x32) and component, the kept coefficients (one i32 at 1/8,
/// four at 1/4) and their samples, up to four components, plus the output (four bytes a pixel)
/// and the Huffman tables (eight, 2 x 8 KiB of lookups each).
pub fn dc_bound(width: u32, height: u32, scale: jpeg_dc::Scale) -> usize {
    let blocks = (width as usize).div_ceil(32) * 4 * (height as usize).div_ceil(32) * 4;
    let kept = scale.per_block() * scale.per_block();
    256 * 1024 + blocks * kept * 4 * (4 + 1) + blocks * kept * 4
}

/// The shrink-on-load decoder at both scales: an error, `None`, or an image of the scaled size,
/// within [`dc_bound`].
pub fn jpeg_dc_holds(data: &[u8]) {
    // What render() refuses before decoding (RenderOptions::max_pixels is 100 MP by default;
    // 16 MP keeps the fuzzer fast).
    let Some(header) = jpeg_dc::header(data) else {
        return;
    };
    if u64::from(header.width) * u64::from(header.height) > 16_000_000 {
        return;
    }
    for scale in [jpeg_dc::Scale::Eighth, jpeg_dc::Scale::Quarter] {
        let baseline = reset_peak();
        let decoded = jpeg_dc::decode(data, scale);
        let peak = peak_above(baseline);
        let bound = dc_bound(header.width, header.height, scale);
        assert!(
            peak <= bound,
            "{peak} bytes at the peak for a {}x{} frame at {scale:?} (bound {bound})",
            header.width,
            header.height
        );
        if let Ok(Some(image)) = decoded {
            assert_eq!(image.width, header.width.div_ceil(scale.denominator()));
            assert_eq!(image.height, header.height.div_ceil(scale.denominator()));
            assert_eq!(
                image.pixels.len(),
                (image.width * image.height) as usize * image.colour.channels()
            );
        }
    }
}

/// The whole render path (format sniffing, every decoder, resize, orientation, encode): an error
/// or a thumbnail, a JPEG no wider than asked and never upscaled; a JPEG that took the
/// shrink-on-load path stayed in its bound.
pub fn render_holds(data: &[u8]) {
    // 4 MP: inputs that only the general decoders take (a progressive JPEG too narrow for the
    // shrink-on-load path decodes every coefficient) stay well inside the 1 s timeout under
    // coverage instrumentation; a 384 x 32984 progressive JPEG took 0.36 s uninstrumented.
    let options = render::RenderOptions {
        max_pixels: 4_000_000,
        max_alloc: 256 * 1024 * 1024,
        ..render::RenderOptions::default()
    };
    let baseline = reset_peak();
    let Ok(thumbnail) = render::render(data, &options) else {
        return;
    };
    let peak = peak_above(baseline);
    assert!(thumbnail.width <= options.width && thumbnail.width >= 1);
    assert!(thumbnail.jpeg.starts_with(&[0xFF, 0xD8]));
    if let Some(header) = jpeg_dc::header(data)
        && let Some(scale) = render::shrink_on_load(header.width.min(header.height), options.width)
        && matches!(jpeg_dc::decode(data, scale), Ok(Some(_)))
    {
        // Wide enough for `scale` (or 1/8) whatever the orientation: the shrink-on-load path
        // served it, at most at `scale`'s size.
        let bound = dc_bound(header.width, header.height, scale) + 4 * 1024 * 1024;
        assert!(
            peak <= bound,
            "{peak} bytes at the peak (bound {bound} at {scale:?})"
        );
    }
}
