//! The 1/8-scale JPEG decoder on arbitrary bytes: never a panic or a hang (libFuzzer's
//! `-timeout`), and never more memory than the 1/8-scale image needs, whatever the header and
//! the scans claim.
#![no_main]

mod common;

use common::{Counting, jpeg_dc};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // What render() refuses before decoding (RenderOptions::max_pixels is 100 MP by default;
    // 16 MP keeps the fuzzer fast).
    let Some(header) = jpeg_dc::header(data) else {
        return;
    };
    if u64::from(header.width) * u64::from(header.height) > 16_000_000 {
        return;
    }
    let baseline = common::reset_peak();
    let decoded = jpeg_dc::decode(data);
    let peak = common::peak_above(baseline);
    let bound = common::dc_bound(header.width, header.height);
    assert!(
        peak <= bound,
        "{peak} bytes at the peak for a {}x{} frame (bound {bound})",
        header.width,
        header.height
    );
    if let Ok(Some(image)) = decoded {
        assert_eq!(image.width, header.width.div_ceil(8));
        assert_eq!(image.height, header.height.div_ceil(8));
        assert_eq!(
            image.pixels.len(),
            (image.width * image.height) as usize * image.colour.channels()
        );
    }
});
