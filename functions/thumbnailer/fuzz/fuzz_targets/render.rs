//! The whole render path (format sniffing, every decoder, resize, orientation, encode) on
//! arbitrary bytes: an error or a thumbnail, never a panic or a hang; a thumbnail is a JPEG no
//! wider than asked and never upscaled; a JPEG that took the 1/8-scale path stayed in its bound.
#![no_main]

mod common;

use common::{Counting, jpeg_dc, render};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // 4 MP: inputs that only the general decoders take (a progressive JPEG too narrow for the
    // 1/8 path decodes every coefficient) stay well inside the 1 s timeout under coverage
    // instrumentation; a 384 x 32984 progressive JPEG took 0.36 s uninstrumented.
    let options = render::RenderOptions {
        max_pixels: 4_000_000,
        max_alloc: 256 * 1024 * 1024,
        ..render::RenderOptions::default()
    };
    let baseline = common::reset_peak();
    let Ok(thumbnail) = render::render(data, &options) else {
        return;
    };
    let peak = common::peak_above(baseline);
    assert!(thumbnail.width <= options.width && thumbnail.width >= 1);
    assert!(thumbnail.jpeg.starts_with(&[0xFF, 0xD8]));
    if let Some(header) = jpeg_dc::header(data)
        && matches!(jpeg_dc::decode(data), Ok(Some(_)))
        && header.width.div_ceil(8) >= options.width
        && header.height.div_ceil(8) >= options.width
    {
        // Both sides wide enough at 1/8 whatever the orientation: the DC path served it.
        let bound = common::dc_bound(header.width, header.height) + 4 * 1024 * 1024;
        assert!(peak <= bound, "{peak} bytes at the peak (DC bound {bound})");
    }
});
