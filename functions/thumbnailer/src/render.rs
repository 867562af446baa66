//! The thumbnail core: bytes of an uploaded image in, a JPEG `width` pixels wide out.
//!
//! - JPEG (RGB, grayscale or CMYK, baseline or progressive) decodes *scaled* in the DCT domain
//!   (1/2, 1/4 or 1/8, like sharp's shrink-on-load) so a 24 MP photo never exists at full size.
//! - PNG (8/16-bit), WebP and GIF (first frame) go through `image`, built without its JPEG
//!   decoder: every JPEG is `jpeg_dc`'s or `jpeg-decoder`'s (one JPEG decoder less in the zip).
//! - Alpha is flattened on white; EXIF orientation is applied; images narrower than the target
//!   keep their width (never upscaled); the aspect ratio is kept.
//! - Limits bound pixels and memory, so decompression bombs fail fast as [`RenderError`]s. Every
//!   error here is permanent: the same bytes will fail the same way on a retry.

use std::io::Cursor;

use fast_image_resize::images::Image;
use fast_image_resize::pixels::{self, InnerPixel};
use fast_image_resize::{FilterType, PixelTrait, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};

use crate::jpeg_dc;

#[derive(Debug, Clone)]
pub struct RenderOptions {
    pub width: u32,
    pub quality: u8,
    /// Largest source accepted, in pixels (width x height).
    pub max_pixels: u64,
    /// Largest allocation a decoder may make, in bytes.
    pub max_alloc: u64,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            width: 200,
            quality: 80,
            max_pixels: 100_000_000,
            max_alloc: 512 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Thumbnail {
    pub jpeg: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// Width x height of the source image (before any scaling).
    pub source_pixels: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RenderError {
    #[error("the object is empty")]
    Empty,
    #[error("not an image in an accepted format (JPEG, PNG, WebP, GIF)")]
    UnsupportedFormat,
    #[error("image is {width}x{height}, over the {max_pixels}-pixel limit")]
    TooLarge {
        width: u32,
        height: u32,
        max_pixels: u64,
    },
    #[error("image could not be decoded: {0}")]
    Decode(String),
    #[error("thumbnail could not be encoded: {0}")]
    Encode(String),
}

impl RenderError {
    /// A short, fixed name for the `UploadsFailed` metric's `Reason` dimension.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::UnsupportedFormat => "unsupported_format",
            Self::TooLarge { .. } => "too_many_pixels",
            Self::Decode(_) => "undecodable",
            Self::Encode(_) => "encode_failed",
        }
    }
}

/// Renders the thumbnail of `bytes`.
pub fn render(bytes: &[u8], options: &RenderOptions) -> Result<Thumbnail, RenderError> {
    if bytes.is_empty() {
        return Err(RenderError::Empty);
    }
    let format = image::guess_format(bytes).map_err(|_| RenderError::UnsupportedFormat)?;
    let Decoded {
        pixels,
        orientation,
        source,
    } = match format {
        ImageFormat::Jpeg => match decode_jpeg_dc(bytes, options)? {
            Some(decoded) => decoded,
            None => decode_jpeg_scaled(bytes, options)?,
        },
        ImageFormat::Png | ImageFormat::WebP | ImageFormat::Gif => {
            decode_general(bytes, format, options)?
        }
        _ => return Err(RenderError::UnsupportedFormat),
    };
    let (target_w, target_h) =
        target_size(pixels.width(), pixels.height(), orientation, options.width);
    let resized = resize(pixels, target_w, target_h)?;
    let oriented = apply_orientation(resized, orientation);
    let mut thumbnail = encode(&oriented, options.quality)?;
    thumbnail.source_pixels = u64::from(source.0) * u64::from(source.1);
    Ok(thumbnail)
}

/// What a decoder hands the resizer: pixels (possibly already scaled down), the EXIF orientation
/// still to apply, and the source's own size.
struct Decoded {
    pixels: Pixels,
    orientation: Orientation,
    source: (u32, u32),
}

/// Decoded pixels: 8-bit RGB or grayscale, alpha already flattened.
enum Pixels {
    Rgb(u32, u32, Vec<u8>),
    Gray(u32, u32, Vec<u8>),
}

impl Pixels {
    fn width(&self) -> u32 {
        match self {
            Self::Rgb(w, ..) | Self::Gray(w, ..) => *w,
        }
    }
    fn height(&self) -> u32 {
        match self {
            Self::Rgb(_, h, _) | Self::Gray(_, h, _) => *h,
        }
    }
}

fn check_pixels(width: u32, height: u32, options: &RenderOptions) -> Result<(), RenderError> {
    if width == 0 || height == 0 {
        return Err(RenderError::Decode("image has no pixels".into()));
    }
    if u64::from(width) * u64::from(height) > options.max_pixels {
        return Err(RenderError::TooLarge {
            width,
            height,
            max_pixels: options.max_pixels,
        });
    }
    Ok(())
}

/// The fastest path, for every JPEG whose 1/8-scale image is still at least as wide as the
/// thumbnail once oriented: DC coefficients only ([`crate::jpeg_dc`]). `None` when it does not
/// apply.
///
/// The floor is the whole rule, as with Pillow's draft mode and libvips's shrink-on-load: a
/// 1/8-scale image is a box-filtered copy, and resampling it down by any factor >= 1 scores the
/// same SSIM against a full-resolution Lanczos3 reference as Pillow's does (docs/benchmarks.md;
/// `make bench-thumbnails` shows the SSIM of every row).
fn decode_jpeg_dc(bytes: &[u8], options: &RenderOptions) -> Result<Option<Decoded>, RenderError> {
    let Some(header) = jpeg_dc::header(bytes) else {
        return Ok(None);
    };
    let (width, height) = (header.width, header.height);
    check_pixels(width, height, options)?;
    let shown_width = if swaps_axes(header.orientation) {
        height
    } else {
        width
    };
    if shown_width.div_ceil(8) < options.width {
        return Ok(None);
    }
    match jpeg_dc::decode(bytes) {
        Ok(Some(image)) => {
            let (w, h) = (image.width, image.height);
            let pixels = match image.colour {
                jpeg_dc::Colour::Gray => Pixels::Gray(w, h, image.pixels),
                jpeg_dc::Colour::Rgb => Pixels::Rgb(w, h, image.pixels),
                jpeg_dc::Colour::Cmyk => Pixels::Rgb(w, h, cmyk_to_rgb(&image.pixels)),
            };
            Ok(Some(Decoded {
                pixels,
                orientation: image.orientation,
                source: (width, height),
            }))
        }
        Ok(None) => Ok(None),
        Err(err) => Err(RenderError::Decode(err.to_string())),
    }
}

/// Every other JPEG, decoded at the smallest DCT scale that still leaves at least twice the
/// target width for the resampling filter. CMYK comes out as RGB; 16-bit samples are refused.
fn decode_jpeg_scaled(bytes: &[u8], options: &RenderOptions) -> Result<Decoded, RenderError> {
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    decoder
        .read_info()
        .map_err(|e| RenderError::Decode(e.to_string()))?;
    let info = decoder
        .info()
        .ok_or_else(|| RenderError::Decode("no frame header".into()))?;
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    check_pixels(width, height, options)?;
    if info.pixel_format == jpeg_decoder::PixelFormat::L16 {
        return Err(RenderError::UnsupportedFormat);
    }
    let orientation = decoder
        .exif_data()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    // The side that ends up horizontal must keep >= 2x the target width after scaling.
    let displayed_width = if swaps_axes(orientation) {
        height
    } else {
        width
    };
    let wanted = (options.width * 2).min(displayed_width);
    let ratio = f64::from(wanted) / f64::from(displayed_width);
    let request =
        |side: u32| ((f64::from(side) * ratio).ceil() as u32).clamp(1, u32::from(u16::MAX)) as u16;
    let (w, h) = decoder
        .scale(request(width), request(height))
        .map_err(|e| RenderError::Decode(e.to_string()))?;
    let data = decoder
        .decode()
        .map_err(|e| RenderError::Decode(e.to_string()))?;
    let (w, h) = (u32::from(w), u32::from(h));
    let pixels = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => Pixels::Gray(w, h, data),
        jpeg_decoder::PixelFormat::CMYK32 => Pixels::Rgb(w, h, cmyk_to_rgb(&data)),
        _ => Pixels::Rgb(w, h, data),
    };
    Ok(Decoded {
        pixels,
        orientation,
        source: (width, height),
    })
}

/// jpeg-decoder (and the DC path, likewise) hands CMYK out as ink amounts (Adobe's inverted storage already undone); paper
/// is white, so each channel is what neither its ink nor black absorbs.
pub fn cmyk_to_rgb(cmyk: &[u8]) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(cmyk.len() / 4 * 3);
    for px in cmyk.chunks_exact(4) {
        let white = 255 - u16::from(px[3]);
        for ink in &px[..3] {
            rgb.push(((255 - u16::from(*ink)) * white / 255) as u8);
        }
    }
    rgb
}

fn decode_general(
    bytes: &[u8],
    format: ImageFormat,
    options: &RenderOptions,
) -> Result<Decoded, RenderError> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_alloc = Some(options.max_alloc);
    reader.limits(limits);
    let decode_err = |e: image::ImageError| match e {
        image::ImageError::Limits(_) => RenderError::TooLarge {
            width: 0,
            height: 0,
            max_pixels: options.max_pixels,
        },
        other => RenderError::Decode(other.to_string()),
    };
    let mut decoder = reader.into_decoder().map_err(decode_err)?;
    let (width, height) = decoder.dimensions();
    check_pixels(width, height, options)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let image = DynamicImage::from_decoder(decoder).map_err(decode_err)?;
    let pixels = match image {
        DynamicImage::ImageLuma8(gray) => Pixels::Gray(width, height, gray.into_raw()),
        DynamicImage::ImageRgb8(rgb) => Pixels::Rgb(width, height, rgb.into_raw()),
        other if other.color().has_alpha() => {
            Pixels::Rgb(width, height, flatten_on_white(&other.to_rgba8()))
        }
        other if other.color().channel_count() == 1 => {
            Pixels::Gray(width, height, other.to_luma8().into_raw())
        }
        other => Pixels::Rgb(width, height, other.to_rgb8().into_raw()),
    };
    Ok(Decoded {
        pixels,
        orientation,
        source: (width, height),
    })
}

/// Alpha blended onto white paper (what a JPEG, which has no alpha, shows).
pub fn flatten_on_white(rgba: &image::RgbaImage) -> Vec<u8> {
    let mut out = Vec::with_capacity(rgba.len() / 4 * 3);
    for px in rgba.pixels() {
        let [r, g, b, a] = px.0;
        let a = u32::from(a);
        for c in [r, g, b] {
            out.push(((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8);
        }
    }
    out
}

fn swaps_axes(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// Pre-orientation size to resize to, so the displayed (oriented) image is `width` wide, or its
/// own width if narrower, with the aspect ratio kept.
fn target_size(width: u32, height: u32, orientation: Orientation, target_width: u32) -> (u32, u32) {
    let (shown_w, shown_h) = if swaps_axes(orientation) {
        (height, width)
    } else {
        (width, height)
    };
    let out_w = target_width.min(shown_w);
    let out_h = ((u64::from(shown_h) * u64::from(out_w) + u64::from(shown_w) / 2)
        / u64::from(shown_w))
    .max(1) as u32;
    if swaps_axes(orientation) {
        (out_h, out_w)
    } else {
        (out_w, out_h)
    }
}

fn resize(pixels: Pixels, width: u32, height: u32) -> Result<Pixels, RenderError> {
    let (src_w, src_h, data, pixel_type, gray) = match pixels {
        Pixels::Rgb(w, h, d) => (w, h, d, PixelType::U8x3, false),
        Pixels::Gray(w, h, d) => (w, h, d, PixelType::U8, true),
    };
    if (src_w, src_h) == (width, height) {
        return Ok(if gray {
            Pixels::Gray(width, height, data)
        } else {
            Pixels::Rgb(width, height, data)
        });
    }
    let src = Image::from_vec_u8(src_w, src_h, data, pixel_type)
        .map_err(|e| RenderError::Decode(e.to_string()))?;
    let mut dst = Image::new(width, height, pixel_type);
    if gray {
        resize_typed::<pixels::U8>(&src, &mut dst)?;
    } else {
        resize_typed::<pixels::U8x3>(&src, &mut dst)?;
    }
    let out = dst.into_vec();
    Ok(if gray {
        Pixels::Gray(width, height, out)
    } else {
        Pixels::Rgb(width, height, out)
    })
}

/// Lanczos3 through the resizer's typed entry point. `Resizer::resize` dispatches on the pixel
/// type at run time and so links the convolution code of all 13 pixel types; these are the only
/// two the decoders produce (0.37 MB less x86_64 binary, docs/benchmarks.md).
fn resize_typed<P: PixelTrait + InnerPixel>(
    src: &Image,
    dst: &mut Image,
) -> Result<(), RenderError> {
    let mismatch = || RenderError::Encode("resize buffers do not hold the expected pixels".into());
    let src_view = src.typed_image::<P>().ok_or_else(mismatch)?;
    let mut dst_view = dst.typed_image_mut::<P>().ok_or_else(mismatch)?;
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    Resizer::new()
        .resize_typed(&src_view, &mut dst_view, &options)
        .map_err(|e| RenderError::Encode(e.to_string()))
}

fn apply_orientation(pixels: Pixels, orientation: Orientation) -> Pixels {
    if orientation == Orientation::NoTransforms {
        return pixels;
    }
    let mut image = match pixels {
        Pixels::Rgb(w, h, d) => {
            DynamicImage::ImageRgb8(RgbImage::from_raw(w, h, d).expect("buffer matches size"))
        }
        Pixels::Gray(w, h, d) => DynamicImage::ImageLuma8(
            image::GrayImage::from_raw(w, h, d).expect("buffer matches size"),
        ),
    };
    image.apply_orientation(orientation);
    let (w, h) = (image.width(), image.height());
    match image {
        DynamicImage::ImageLuma8(gray) => Pixels::Gray(w, h, gray.into_raw()),
        other => Pixels::Rgb(w, h, other.to_rgb8().into_raw()),
    }
}

fn encode(pixels: &Pixels, quality: u8) -> Result<Thumbnail, RenderError> {
    let mut jpeg = Vec::new();
    let (w, h, data, color) = match pixels {
        Pixels::Rgb(w, h, d) => (*w, *h, d, jpeg_encoder::ColorType::Rgb),
        Pixels::Gray(w, h, d) => (*w, *h, d, jpeg_encoder::ColorType::Luma),
    };
    let too_big = |_| RenderError::Encode("thumbnail larger than 65535 px".into());
    let encoder = jpeg_encoder::Encoder::new(&mut jpeg, quality);
    encoder
        .encode(
            data,
            u16::try_from(w).map_err(too_big)?,
            u16::try_from(h).map_err(too_big)?,
            color,
        )
        .map_err(|e| RenderError::Encode(e.to_string()))?;
    Ok(Thumbnail {
        jpeg,
        width: w,
        height: h,
        source_pixels: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmyk_inks_become_the_colour_left_on_white_paper() {
        let inks = [
            [0, 0, 0, 0],     // no ink: white
            [0, 0, 0, 255],   // full black
            [255, 0, 0, 0],   // cyan
            [0, 255, 255, 0], // magenta + yellow: red
            [0, 0, 0, 128],   // half black: mid grey
        ];
        let rgb = cmyk_to_rgb(&inks.concat());
        assert_eq!(
            rgb.chunks(3).collect::<Vec<_>>(),
            [
                [255, 255, 255],
                [0, 0, 0],
                [0, 255, 255],
                [255, 0, 0],
                [127, 127, 127]
            ]
        );
    }

    #[test]
    fn target_size_never_upscales_and_keeps_aspect() {
        assert_eq!(
            target_size(4000, 3000, Orientation::NoTransforms, 200),
            (200, 150)
        );
        assert_eq!(
            target_size(120, 80, Orientation::NoTransforms, 200),
            (120, 80)
        );
        // Rotated 90: the displayed width is the stored height.
        assert_eq!(
            target_size(4000, 3000, Orientation::Rotate90, 200),
            (267, 200)
        );
        assert_eq!(
            target_size(5000, 1, Orientation::NoTransforms, 200),
            (200, 1)
        );
    }

    #[test]
    fn flattening_blends_on_white() {
        let rgba = image::RgbaImage::from_raw(2, 1, vec![0, 0, 0, 0, 255, 0, 0, 255]).unwrap();
        assert_eq!(flatten_on_white(&rgba), vec![255, 255, 255, 255, 0, 0]);
    }

    #[test]
    fn garbage_empty_and_truncated_inputs_are_errors() {
        let options = RenderOptions::default();
        assert_eq!(render(b"", &options).unwrap_err(), RenderError::Empty);
        assert_eq!(
            render(b"hello, not an image", &options).unwrap_err(),
            RenderError::UnsupportedFormat
        );
        assert!(matches!(
            render(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 16], &options).unwrap_err(),
            RenderError::Decode(_)
        ));
    }
}
