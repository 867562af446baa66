//! What both targets share: the thumbnailer's decode path compiled in (by path, so the fuzz
//! build instruments the image code only, not the Lambda handler and its AWS SDK), and a
//! counting global allocator that fails an input whose peak allocation passes its bound.

#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

#[path = "../../src/jpeg_dc.rs"]
pub mod jpeg_dc;
#[path = "../../src/render.rs"]
pub mod render;

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

/// What the 1/8-scale path may hold for a frame of `width` x `height`: per 8x8 block (padded to
/// MCUs of up to 32x32) and component, one i32 coefficient and one sample, up to four
/// components, plus the output (four bytes a pixel) and the Huffman tables (eight, 2 x 8 KiB of
/// lookups each).
pub fn dc_bound(width: u32, height: u32) -> usize {
    let blocks = (width as usize).div_ceil(32) * 4 * (height as usize).div_ceil(32) * 4;
    256 * 1024 + blocks * 4 * (4 + 1) + blocks * 4
}
