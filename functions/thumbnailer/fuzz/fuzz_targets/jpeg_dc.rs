//! The shrink-on-load JPEG decoder at both its scales on arbitrary bytes (checks.rs).
#![no_main]

mod common;

// render.rs names its sibling modules from the crate root.
#[allow(unused_imports)]
use common::{jpeg_dc, lzw, render, webp};

#[global_allocator]
static ALLOCATOR: common::checks::Counting = common::checks::Counting;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::checks::jpeg_dc_holds(data));
