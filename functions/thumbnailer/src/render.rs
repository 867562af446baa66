//! The thumbnail core: bytes of an uploaded image in, a JPEG `width` pixels wide out.
//!
//! - JPEG (RGB, grayscale or CMYK, baseline or progressive) decodes *scaled* in the DCT domain
//!   (1/2, 1/4 or 1/8, like sharp's shrink-on-load) so a 24 MP photo never exists at full size.
//! - PNG (8/16-bit, cut to 8 while decoding) is the `png` crate's; GIF (first frame) the `gif`
//!   crate's container with [`crate::lzw`]; WebP (first frame) libwebp's ([`crate::webp`]),
//!   scaled while decoding. `image` is used for its types and transforms, no codec of its own.
//! - Alpha is flattened on white; EXIF orientation is applied; images narrower than the target
//!   keep their width (never upscaled); the aspect ratio is kept.
//! - Limits bound pixels and memory, so decompression bombs fail fast as [`RenderError`]s. Every
//!   error here is permanent: the same bytes will fail the same way on a retry.

use std::io::Cursor;

use fast_image_resize::images::Image;
use fast_image_resize::pixels::{self, InnerPixel};
use fast_image_resize::{FilterType, PixelTrait, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::metadata::Orientation;
use image::{DynamicImage, ImageFormat, RgbImage};

use crate::{jpeg_dc, lzw, webp};

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
        ImageFormat::Gif => decode_gif(bytes, options)?,
        ImageFormat::WebP => decode_webp(bytes, options)?,
        ImageFormat::Png => decode_png(bytes, options)?,
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

/// The fastest path ([`crate::jpeg_dc`]): 1/8 scale from DC coefficients when that image keeps
/// twice the thumbnail's width once oriented, else 1/4 scale from the four lowest coefficients
/// when that one is at least as wide. `None` when neither applies.
///
/// Twice is what Pillow's `thumbnail()` asks its draft mode for (`reducing_gap = 2`), and what
/// SSIM asks too: a 1920 px photo at 1/8 (240 px, 1.2x a 200 px thumbnail) scored 0.005 below
/// Pillow's 1/4-scale decode against a full-resolution Lanczos3 reference; at 1/4 it matches
/// (docs/benchmarks.md; `make bench-thumbnails` shows the SSIM of every row).
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
    let Some(scale) = shrink_on_load(shown_width, options.width) else {
        return Ok(None);
    };
    match jpeg_dc::decode(bytes, scale) {
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

/// The [`jpeg_dc`] scale for a JPEG shown `shown_width` wide and a `target`-wide thumbnail.
pub fn shrink_on_load(shown_width: u32, target: u32) -> Option<jpeg_dc::Scale> {
    if shown_width.div_ceil(8) >= target.saturating_mul(2) {
        Some(jpeg_dc::Scale::Eighth)
    } else if shown_width.div_ceil(4) >= target {
        Some(jpeg_dc::Scale::Quarter)
    } else {
        None
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

/// A decoder refused to allocate past `max_alloc`: too large, though its size is unknown here.
fn over_memory_limit(options: &RenderOptions) -> RenderError {
    RenderError::TooLarge {
        width: 0,
        height: 0,
        max_pixels: options.max_pixels,
    }
}

/// PNG by the `png` crate (the decoder `image` wraps), asked for 8-bit output: palettes and low
/// bit depths expanded, tRNS as alpha, 16-bit samples cut to their high byte while decoding
/// (`image` decodes 16 bits to a buffer twice the size, then converts; a 2 MP 16-bit PNG took
/// 0.9x Pillow that way), then alpha flattened on white.
fn decode_png(bytes: &[u8], options: &RenderOptions) -> Result<Decoded, RenderError> {
    let decode_err = |e: png::DecodingError| match e {
        png::DecodingError::LimitsExceeded => over_memory_limit(options),
        other => RenderError::Decode(other.to_string()),
    };
    let limits = png::Limits {
        bytes: usize::try_from(options.max_alloc).unwrap_or(usize::MAX),
    };
    let mut decoder = png::Decoder::new_with_limits(Cursor::new(bytes), limits);
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(decode_err)?;
    let (width, height) = reader.info().size();
    check_pixels(width, height, options)?;
    let orientation = reader
        .info()
        .exif_metadata
        .as_deref()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| RenderError::Decode("PNG frame too large".into()))?;
    let mut buffer = vec![0u8; size];
    let frame = reader.next_frame(&mut buffer).map_err(decode_err)?;
    buffer.truncate(frame.buffer_size());
    let pixels = match frame.color_type {
        png::ColorType::Grayscale => Pixels::Gray(width, height, buffer),
        png::ColorType::GrayscaleAlpha => {
            Pixels::Gray(width, height, flatten_gray_on_white(&buffer))
        }
        png::ColorType::Rgb => Pixels::Rgb(width, height, buffer),
        png::ColorType::Rgba => Pixels::Rgb(width, height, flatten_rgba_on_white(&buffer)),
        png::ColorType::Indexed => {
            return Err(RenderError::Decode("PNG palette not expanded".into()));
        }
    };
    Ok(Decoded {
        pixels,
        orientation,
        source: (width, height),
    })
}

/// One sample over white paper at `alpha` (0-255), rounded.
#[inline(always)]
fn on_white(sample: u8, alpha: u8) -> u8 {
    let a = u32::from(alpha);
    ((u32::from(sample) * a + 255 * (255 - a) + 127) / 255) as u8
}

/// Gray + alpha samples flattened on white, to gray.
fn flatten_gray_on_white(gray_alpha: &[u8]) -> Vec<u8> {
    gray_alpha
        .chunks_exact(2)
        .map(|px| on_white(px[0], px[1]))
        .collect()
}

/// A GIF's first frame as palette indices (the container by the `gif` crate, the LZW by
/// [`crate::lzw`]) mapped to RGB on white in one pass: `image`'s decoder expands every pixel to
/// RGBA first, then this module flattened it, two full-size passes and buffers more
/// (docs/benchmarks.md). Same picture: the
/// frame placed on the logical screen, transparent pixels, indices past the palette and the
/// screen outside the frame white (what `image` leaves transparent).
fn decode_gif(bytes: &[u8], options: &RenderOptions) -> Result<Decoded, RenderError> {
    let decode_err = |e: gif::DecodingError| match e {
        gif::DecodingError::MemoryLimit | gif::DecodingError::OutOfMemory => {
            over_memory_limit(options)
        }
        other => RenderError::Decode(other.to_string()),
    };
    // The container by the `gif` crate, the frame's LZW bytes by crate::lzw (see there why).
    let mut gif_options = gif::DecodeOptions::new();
    gif_options.skip_frame_decoding(true);
    if let Some(limit) = std::num::NonZeroU64::new(options.max_alloc) {
        gif_options.set_memory_limit(gif::MemoryLimit::Bytes(limit));
    }
    let mut decoder = gif_options
        .read_info(Cursor::new(bytes))
        .map_err(decode_err)?;
    let (width, height) = (u32::from(decoder.width()), u32::from(decoder.height()));
    check_pixels(width, height, options)?;
    let global_palette = decoder.global_palette().map(<[u8]>::to_vec);
    let frame = decoder
        .read_next_frame()
        .map_err(decode_err)?
        .ok_or_else(|| RenderError::Decode("the GIF has no frame".into()))?;
    let (left, top) = (usize::from(frame.left), usize::from(frame.top));
    let (frame_w, frame_h) = (usize::from(frame.width), usize::from(frame.height));
    // A frame may claim more than the screen; it is decoded whole, so it meets the limit too.
    check_pixels(frame.width.into(), frame.height.into(), options).or_else(|e| match e {
        RenderError::Decode(_) => Ok(()), // an empty frame leaves the screen white
        other => Err(other),
    })?;
    let mut indices = vec![0u8; frame_w * frame_h];
    if !indices.is_empty() {
        let [min_code_size, data @ ..] = &frame.buffer[..] else {
            return Err(RenderError::Decode(
                "the GIF frame has no image data".into(),
            ));
        };
        lzw::decode(*min_code_size, data, &mut indices)
            .map_err(|e| RenderError::Decode(e.to_string()))?;
    }
    let palette = frame
        .palette
        .as_deref()
        .or(global_palette.as_deref())
        .ok_or_else(|| RenderError::Decode("the GIF frame has no palette".into()))?;
    // Every index's colour once (white where transparent or past the palette), then one lookup
    // a pixel.
    let mut colours = [[255u8; 3]; 256];
    for (index, colour) in colours.iter_mut().enumerate() {
        if let Some(rgb) = palette.get(index * 3..index * 3 + 3)
            && frame.transparent != Some(index as u8)
        {
            colour.copy_from_slice(rgb);
        }
    }
    // Interlaced frames store rows in four passes: every 8th from 0, every 8th from 4, every
    // 4th from 2, every 2nd from 1.
    let rows: Vec<usize> = if frame.interlaced {
        [(0, 8), (4, 8), (2, 4), (1, 2)]
            .iter()
            .flat_map(|&(first, step)| (first..frame_h).step_by(step))
            .collect()
    } else {
        (0..frame_h).collect()
    };
    let (screen_w, screen_h) = (width as usize, height as usize);
    let mut rgb = vec![255u8; screen_w * screen_h * 3];
    let visible_w = frame_w.min(screen_w.saturating_sub(left));
    if frame_w > 0 && visible_w > 0 {
        for (&y, row) in rows.iter().zip(indices.chunks_exact(frame_w)) {
            if top + y >= screen_h {
                continue;
            }
            let start = ((top + y) * screen_w + left) * 3;
            let out = &mut rgb[start..start + visible_w * 3];
            for (pixel, &index) in out.chunks_exact_mut(3).zip(&row[..visible_w]) {
                pixel.copy_from_slice(&colours[usize::from(index)]);
            }
        }
    }
    Ok(Decoded {
        pixels: Pixels::Rgb(width, height, rgb),
        orientation: Orientation::NoTransforms,
        source: (width, height),
    })
}

/// A WebP's first frame by libwebp, scaled while decoding by the integer factor that keeps twice
/// the thumbnail's width (as the box reduction in [`resize`] would), premultiplied when it has
/// alpha and flattened on white. A frame smaller than the canvas (animations may start so) is
/// decoded at full size and placed on white.
fn decode_webp(bytes: &[u8], options: &RenderOptions) -> Result<Decoded, RenderError> {
    let decode_err = |e: webp::WebpError| RenderError::Decode(e.to_string());
    let file = webp::WebpFile::parse(bytes).map_err(decode_err)?;
    let (width, height) = (file.width, file.height);
    check_pixels(width, height, options)?;
    let frame = file.frame;
    if frame.width == 0 || frame.height == 0 {
        return Err(RenderError::Decode("the WebP frame has no pixels".into()));
    }
    let covers = (frame.left, frame.top, frame.width, frame.height) == (0, 0, width, height);
    let shown_width = if swaps_axes(file.orientation) {
        height
    } else {
        width
    };
    let factor = if covers {
        reducing_factor(shown_width, options.width)
    } else {
        1
    };
    let (out_w, out_h) = (frame.width.div_ceil(factor), frame.height.div_ceil(factor));
    let decoded = webp::decode_frame(&frame, out_w, out_h, frame.has_alpha).map_err(decode_err)?;
    let rgb = if frame.has_alpha {
        flatten_premultiplied_on_white(&decoded)
    } else {
        decoded
    };
    let rgb = if covers {
        rgb
    } else {
        let (canvas_w, left, top) = (width as usize, frame.left as usize, frame.top as usize);
        let mut canvas = vec![255u8; canvas_w * height as usize * 3];
        // The demuxer keeps frames inside the canvas; clipping is for safety only.
        let visible = (out_w as usize).min(canvas_w.saturating_sub(left)) * 3;
        for (y, row) in rgb.chunks_exact(out_w as usize * 3).enumerate() {
            let start = ((top + y) * canvas_w + left) * 3;
            if let Some(out) = canvas.get_mut(start..start + visible) {
                out.copy_from_slice(&row[..visible]);
            }
        }
        canvas
    };
    let (w, h) = if covers {
        (out_w, out_h)
    } else {
        (width, height)
    };
    Ok(Decoded {
        pixels: Pixels::Rgb(w, h, rgb),
        orientation: file.orientation,
        source: (width, height),
    })
}

/// Premultiplied RGBA on white: each channel plus the white the missing coverage lets through.
fn flatten_premultiplied_on_white(rgba: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; rgba.len() / 4 * 3];
    for (px, rgb) in rgba.chunks_exact(4).zip(out.chunks_exact_mut(3)) {
        let white = 255 - px[3];
        for (channel, &c) in rgb.iter_mut().zip(&px[..3]) {
            *channel = c.saturating_add(white);
        }
    }
    out
}

/// Alpha blended onto white paper (what a JPEG, which has no alpha, shows).
pub fn flatten_on_white(rgba: &image::RgbaImage) -> Vec<u8> {
    flatten_rgba_on_white(rgba.as_raw())
}

/// RGBA samples (not premultiplied) flattened on white, to RGB.
fn flatten_rgba_on_white(rgba: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; rgba.len() / 4 * 3];
    for (px, rgb) in rgba.chunks_exact(4).zip(out.chunks_exact_mut(3)) {
        if px[3] == 255 {
            rgb.copy_from_slice(&px[..3]);
            continue;
        }
        for (channel, &c) in rgb.iter_mut().zip(&px[..3]) {
            *channel = on_white(c, px[3]);
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

/// The integer factor a source is box-reduced by before Lanczos3, per axis: what leaves at
/// least twice the target (Pillow's `reducing_gap = 2`), 1 when that is no reduction.
fn reducing_factor(source: u32, target: u32) -> u32 {
    (source / target.max(1) / 2).max(1)
}

/// Lanczos3 through the resizer's typed entry point, after a box reduction by an integer factor
/// when the source is over twice the target (`reducing_factor`), as Pillow's `thumbnail()` does:
/// a 1920 px frame becomes 480 px averaging 4x4 pixels, about 4 filter taps an output pixel
/// instead of Lanczos3's 58 at that ratio, and scores the same SSIM. `Resizer::resize`
/// dispatches on the pixel type at run time and so links the convolution code of all 13 pixel
/// types; these are the only two the decoders produce (0.37 MB less x86_64 binary,
/// docs/benchmarks.md).
fn resize_typed<P: PixelTrait + InnerPixel>(
    src: &Image,
    dst: &mut Image,
) -> Result<(), RenderError> {
    let mismatch = || RenderError::Encode("resize buffers do not hold the expected pixels".into());
    let failed = |e: fast_image_resize::ResizeError| RenderError::Encode(e.to_string());
    let mut resizer = Resizer::new();
    let lanczos = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    let (fx, fy) = (
        reducing_factor(src.width(), dst.width()),
        reducing_factor(src.height(), dst.height()),
    );
    let reduced = if fx > 1 || fy > 1 {
        let mut reduced = Image::new(
            src.width().div_ceil(fx),
            src.height().div_ceil(fy),
            src.pixel_type(),
        );
        let boxed = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Box));
        resizer
            .resize_typed(
                &src.typed_image::<P>().ok_or_else(mismatch)?,
                &mut reduced.typed_image_mut::<P>().ok_or_else(mismatch)?,
                &boxed,
            )
            .map_err(failed)?;
        Some(reduced)
    } else {
        None
    };
    let src_view = reduced
        .as_ref()
        .unwrap_or(src)
        .typed_image::<P>()
        .ok_or_else(mismatch)?;
    let mut dst_view = dst.typed_image_mut::<P>().ok_or_else(mismatch)?;
    resizer
        .resize_typed(&src_view, &mut dst_view, &lanczos)
        .map_err(failed)
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

    /// A GIF whose first frame is smaller than the screen, offset, partly off it, with a
    /// transparent index and indices past its 4-colour palette; interlaced or not.
    fn gif(interlaced: bool, frame_x: u16) -> Vec<u8> {
        let palette = [255, 0, 0, 0, 0, 255, 0, 255, 0, 10, 20, 30];
        let (w, h) = (90u16, 40u16);
        let indices: Vec<u8> = (0..u32::from(w) * u32::from(h))
            .map(|i| ((i % 7 + i / 13) % 6) as u8)
            .collect();
        let mut bytes = Vec::new();
        let mut encoder = gif::Encoder::new(&mut bytes, 120, 50, &palette).unwrap();
        let mut frame = gif::Frame::from_indexed_pixels(w, h, indices, Some(2));
        (frame.left, frame.top, frame.interlaced) = (frame_x, 5, interlaced);
        encoder.write_frame(&frame).unwrap();
        drop(encoder);
        bytes
    }

    /// The `VP8L` chunk (header included) of a lossless WebP `image` writes.
    fn vp8l_chunk(picture: &image::RgbaImage) -> Vec<u8> {
        let mut file = std::io::Cursor::new(Vec::new());
        picture
            .write_to(&mut file, ImageFormat::WebP)
            .expect("encodes");
        let file = file.into_inner();
        let mut at = 12;
        while at + 8 <= file.len() {
            let size = u32::from_le_bytes(file[at + 4..at + 8].try_into().unwrap()) as usize;
            if &file[at..at + 4] == b"VP8L" {
                return file[at..at + 8 + size + size % 2].to_vec();
            }
            at += 8 + size + size % 2;
        }
        panic!("no VP8L chunk");
    }

    fn chunk(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = [kind.as_slice(), &(body.len() as u32).to_le_bytes(), body].concat();
        if body.len() % 2 == 1 {
            out.push(0);
        }
        out
    }

    fn u24(v: u32) -> [u8; 3] {
        let b = v.to_le_bytes();
        [b[0], b[1], b[2]]
    }

    /// An extended WebP (RIFF/VP8X, written by hand: `image` writes only simple files): a
    /// canvas, optional EXIF, and either the still image or one animation frame at an offset.
    fn extended_webp(
        canvas: (u32, u32),
        frame: &image::RgbaImage,
        offset: Option<(u32, u32)>,
        exif: Option<&[u8]>,
    ) -> Vec<u8> {
        let flags =
            0x10 | if exif.is_some() { 0x08 } else { 0 } | if offset.is_some() { 0x02 } else { 0 };
        let mut vp8x = vec![flags, 0, 0, 0];
        vp8x.extend(u24(canvas.0 - 1));
        vp8x.extend(u24(canvas.1 - 1));
        let mut body = [b"WEBP".as_slice(), &chunk(b"VP8X", &vp8x)].concat();
        match offset {
            Some((x, y)) => {
                body.extend(chunk(b"ANIM", &[0, 0, 0, 0, 0, 0]));
                let mut anmf = Vec::new();
                for v in [x / 2, y / 2, frame.width() - 1, frame.height() - 1, 100] {
                    anmf.extend(u24(v));
                }
                anmf.push(0);
                anmf.extend(vp8l_chunk(frame));
                body.extend(chunk(b"ANMF", &anmf));
            }
            None => body.extend(vp8l_chunk(frame)),
        }
        if let Some(exif) = exif {
            body.extend(chunk(b"EXIF", exif));
        }
        [
            b"RIFF".as_slice(),
            &(body.len() as u32).to_le_bytes(),
            &body,
        ]
        .concat()
    }

    /// A picture with every level of alpha.
    fn translucent(width: u32, height: u32) -> image::RgbaImage {
        image::RgbaImage::from_fn(width, height, |x, y| {
            image::Rgba([
                (x * 255 / width) as u8,
                (y * 255 / height) as u8,
                ((x ^ y) & 0xFF) as u8,
                ((x + y) * 255 / (width + height)) as u8,
            ])
        })
    }

    fn max_diff(a: &[u8], b: &[u8]) -> u8 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| x.abs_diff(*y))
            .max()
            .unwrap_or(0)
    }

    /// libwebp's picture is `image`'s, flattened on white (premultiplied: within one level of
    /// rounding), at full size while the frame is under twice the thumbnail's width.
    #[test]
    fn webp_with_alpha_is_the_picture_on_white() {
        let picture = translucent(300, 200);
        let mut file = std::io::Cursor::new(Vec::new());
        picture.write_to(&mut file, ImageFormat::WebP).unwrap();
        let Decoded { pixels, .. } =
            decode_webp(file.get_ref(), &RenderOptions::default()).unwrap();
        let Pixels::Rgb(w, h, rgb) = pixels else {
            panic!("WebPs decode to RGB");
        };
        assert_eq!((w, h), (300, 200));
        assert!(max_diff(&rgb, &flatten_on_white(&picture)) <= 2);
    }

    /// Over twice the thumbnail's width, libwebp scales while decoding by the integer factor the
    /// box reduction would use: the 2x2 means of the picture.
    #[test]
    fn wide_webps_are_scaled_while_decoding() {
        let picture = translucent(1000, 600);
        let mut file = std::io::Cursor::new(Vec::new());
        picture.write_to(&mut file, ImageFormat::WebP).unwrap();
        let Decoded { pixels, source, .. } =
            decode_webp(file.get_ref(), &RenderOptions::default()).unwrap();
        assert_eq!(source, (1000, 600));
        let Pixels::Rgb(w, h, rgb) = pixels else {
            panic!("WebPs decode to RGB");
        };
        assert_eq!((w, h), (500, 300));
        let flat = flatten_on_white(&picture);
        let mean: Vec<u8> = (0..300usize)
            .flat_map(|y| (0..500usize).map(move |x| (x, y)))
            .flat_map(|(x, y)| (0..3).map(move |c| (x, y, c)))
            .map(|(x, y, c)| {
                let at = |dx: usize, dy: usize| {
                    u32::from(flat[((2 * y + dy) * 1000 + 2 * x + dx) * 3 + c])
                };
                ((at(0, 0) + at(1, 0) + at(0, 1) + at(1, 1) + 2) / 4) as u8
            })
            .collect();
        let mean_abs = rgb
            .iter()
            .zip(&mean)
            .map(|(a, b)| f64::from(a.abs_diff(*b)))
            .sum::<f64>()
            / rgb.len() as f64;
        assert!(mean_abs < 2.0, "mean abs diff {mean_abs}");
    }

    /// An animation's first frame sits at its offset on a white canvas; EXIF orientation is read
    /// from the extended format's chunk.
    #[test]
    fn extended_webps_place_the_first_frame_and_carry_orientation() {
        let frame = translucent(60, 40);
        let animated = extended_webp((120, 90), &frame, Some((20, 30)), None);
        let Decoded { pixels, .. } = decode_webp(&animated, &RenderOptions::default()).unwrap();
        let Pixels::Rgb(w, h, rgb) = pixels else {
            panic!("WebPs decode to RGB");
        };
        assert_eq!((w, h), (120, 90));
        let mut expected = vec![255u8; 120 * 90 * 3];
        for (y, row) in flatten_on_white(&frame).chunks_exact(60 * 3).enumerate() {
            let start = ((30 + y) * 120 + 20) * 3;
            expected[start..start + row.len()].copy_from_slice(row);
        }
        assert!(max_diff(&rgb, &expected) <= 2);
        // TIFF, little-endian, one entry: orientation (0x0112) = 6, rotate 90 clockwise.
        let exif = [
            0x49, 0x49, 0x2A, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0,
            0, 0,
        ];
        let rotated = extended_webp((60, 40), &frame, None, Some(&exif));
        let decoded = decode_webp(&rotated, &RenderOptions::default()).unwrap();
        assert_eq!(decoded.orientation, Orientation::Rotate90);
        assert!(decode_webp(&rotated[..rotated.len() / 2], &RenderOptions::default()).is_err());
    }

    /// 8-bit output straight from the decoder: the picture `image` decodes, flattened on white
    /// (16-bit samples cut to their high byte rather than rounded: within one level).
    #[test]
    fn pngs_of_every_depth_and_alpha_are_the_picture_on_white() {
        let rgba = translucent(120, 80);
        let wide = image::ImageBuffer::<image::Rgba<u16>, Vec<u16>>::from_fn(120, 80, |x, y| {
            let p = rgba
                .get_pixel(x, y)
                .0
                .map(|v| u16::from(v) * 257 + (x as u16 & 0xFF));
            image::Rgba(p)
        });
        let cases = [
            ("rgba8", DynamicImage::ImageRgba8(rgba.clone())),
            ("rgba16", DynamicImage::ImageRgba16(wide)),
            (
                "gray+alpha",
                DynamicImage::ImageLumaA8(DynamicImage::ImageRgba8(rgba.clone()).to_luma_alpha8()),
            ),
            (
                "rgb",
                DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(rgba).to_rgb8()),
            ),
        ];
        for (name, picture) in cases {
            let mut file = std::io::Cursor::new(Vec::new());
            picture.write_to(&mut file, ImageFormat::Png).unwrap();
            let Decoded { pixels, .. } =
                decode_png(file.get_ref(), &RenderOptions::default()).unwrap();
            let expected =
                flatten_on_white(&image::load_from_memory(file.get_ref()).unwrap().to_rgba8());
            let got = match pixels {
                Pixels::Rgb(_, _, rgb) => rgb,
                Pixels::Gray(_, _, gray) => gray.iter().flat_map(|&g| [g, g, g]).collect(),
            };
            assert!(max_diff(&got, &expected) <= 1, "{name}");
        }
    }

    /// Straight from palette indices, the picture `image`'s decoder shows flattened on white.
    #[test]
    fn gif_frames_are_the_picture_image_decodes() {
        for (interlaced, x) in [(false, 0), (false, 20), (true, 7), (false, 100)] {
            let bytes = gif(interlaced, x);
            let Decoded { pixels, .. } = decode_gif(&bytes, &RenderOptions::default()).unwrap();
            let Pixels::Rgb(w, h, rgb) = pixels else {
                panic!("GIFs decode to RGB");
            };
            let expected = image::load_from_memory(&bytes).unwrap().to_rgba8();
            assert_eq!((w, h), expected.dimensions());
            assert_eq!(
                rgb,
                flatten_on_white(&expected),
                "interlaced {interlaced}, x {x}"
            );
        }
    }

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
