//! Test images of every accepted kind, generated in memory (no downloads).
//!
//! Each image is split in two halves, top red and bottom blue, so tests can check orientation
//! and colour after resizing.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};

pub const RED: [u8; 3] = [220, 30, 30];
pub const BLUE: [u8; 3] = [30, 30, 220];

/// Top half red, bottom half blue, with a little texture so codecs work for their living.
pub fn two_tone(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let base = if y < height / 2 { RED } else { BLUE };
        let grain = ((x * 7 + y * 13) % 9) as u8;
        Rgb([
            base[0].saturating_add(grain),
            base[1].saturating_add(grain),
            base[2].saturating_add(grain),
        ])
    })
}

fn jpeg_with(
    image: &RgbImage,
    configure: impl FnOnce(&mut jpeg_encoder::Encoder<&mut Vec<u8>>),
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, 90);
    configure(&mut encoder);
    encoder
        .encode(
            image.as_raw(),
            image.width() as u16,
            image.height() as u16,
            jpeg_encoder::ColorType::Rgb,
        )
        .unwrap();
    out
}

pub fn jpeg(width: u32, height: u32) -> Vec<u8> {
    jpeg_with(&two_tone(width, height), |_| {})
}

pub fn progressive_jpeg(width: u32, height: u32) -> Vec<u8> {
    jpeg_with(&two_tone(width, height), |e| e.set_progressive(true))
}

/// A JPEG whose EXIF says how to display it (1-8), e.g. 6 = rotate 90 degrees clockwise.
pub fn jpeg_with_orientation(width: u32, height: u32, orientation: u16) -> Vec<u8> {
    let mut exif = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01".to_vec();
    exif.extend([0x01, 0x12, 0, 3, 0, 0, 0, 1]);
    exif.extend(orientation.to_be_bytes());
    exif.extend([0, 0, 0, 0, 0, 0]);
    jpeg_with(&two_tone(width, height), |e| {
        e.add_app_segment(1, exif).unwrap()
    })
}

pub fn grayscale_jpeg(width: u32, height: u32) -> Vec<u8> {
    let gray = DynamicImage::ImageRgb8(two_tone(width, height)).to_luma8();
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 90)
        .encode(
            gray.as_raw(),
            width as u16,
            height as u16,
            jpeg_encoder::ColorType::Luma,
        )
        .unwrap();
    out
}

/// CMYK JPEG with an Adobe APP14 marker, stored inverted as Photoshop does (the encoder takes ink
/// amounts and inverts them).
pub fn cmyk_jpeg(width: u32, height: u32) -> Vec<u8> {
    let rgb = two_tone(width, height);
    let mut cmyk = Vec::with_capacity(rgb.len() / 3 * 4);
    for px in rgb.pixels() {
        // Ink amounts with no black: C = 255 - R, M = 255 - G, Y = 255 - B, K = 0.
        cmyk.extend([255 - px[0], 255 - px[1], 255 - px[2], 0]);
    }
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 90)
        .encode(
            &cmyk,
            width as u16,
            height as u16,
            jpeg_encoder::ColorType::Cmyk,
        )
        .unwrap();
    out
}

fn encode(image: DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).unwrap();
    out.into_inner()
}

pub fn png(width: u32, height: u32) -> Vec<u8> {
    encode(
        DynamicImage::ImageRgb8(two_tone(width, height)),
        ImageFormat::Png,
    )
}

pub fn png16(width: u32, height: u32) -> Vec<u8> {
    encode(
        DynamicImage::ImageRgb16(DynamicImage::ImageRgb8(two_tone(width, height)).to_rgb16()),
        ImageFormat::Png,
    )
}

/// Fully transparent left half: flattened on white, it must come out white.
pub fn png_with_alpha(width: u32, height: u32) -> Vec<u8> {
    let rgb = two_tone(width, height);
    let rgba = RgbaImage::from_fn(width, height, |x, y| {
        let p = rgb.get_pixel(x, y);
        Rgba([p[0], p[1], p[2], if x < width / 2 { 0 } else { 255 }])
    });
    encode(DynamicImage::ImageRgba8(rgba), ImageFormat::Png)
}

pub fn webp(width: u32, height: u32) -> Vec<u8> {
    encode(
        DynamicImage::ImageRgba8(DynamicImage::ImageRgb8(two_tone(width, height)).to_rgba8()),
        ImageFormat::WebP,
    )
}

pub fn gif(width: u32, height: u32) -> Vec<u8> {
    encode(
        DynamicImage::ImageRgba8(DynamicImage::ImageRgb8(two_tone(width, height)).to_rgba8()),
        ImageFormat::Gif,
    )
}

/// A valid small JPEG whose frame header claims `width` x `height`: a decompression bomb.
pub fn jpeg_claiming(width: u16, height: u16) -> Vec<u8> {
    let mut bytes = jpeg(16, 16);
    let sof = bytes
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("baseline SOF0");
    bytes[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    bytes
}

/// Decodes a thumbnail and returns it as RGB.
pub fn decode(bytes: &[u8]) -> RgbImage {
    image::load_from_memory_with_format(bytes, ImageFormat::Jpeg)
        .expect("thumbnail is a JPEG")
        .to_rgb8()
}

/// Whether a pixel is close to a colour (JPEG and resampling blur a little).
pub fn near(pixel: &Rgb<u8>, colour: [u8; 3]) -> bool {
    pixel.0.iter().zip(colour).all(|(a, b)| a.abs_diff(b) <= 40)
}
