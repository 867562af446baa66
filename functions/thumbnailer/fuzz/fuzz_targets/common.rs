//! What both targets share: the thumbnailer's decode path compiled in (by path, so the fuzz
//! build instruments the image code only, not the Lambda handler and its AWS SDK), and the
//! properties every input must keep (checks.rs, which `cargo test` also replays over seeded
//! mutations: functions/thumbnailer/tests/seeded_mutations.rs).

#![allow(dead_code)]

#[path = "checks.rs"]
pub mod checks;
#[path = "../../src/jpeg_dc.rs"]
pub mod jpeg_dc;
#[path = "../../src/lzw.rs"]
pub mod lzw;
#[path = "../../src/render.rs"]
pub mod render;
#[path = "../../src/webp.rs"]
pub mod webp;
