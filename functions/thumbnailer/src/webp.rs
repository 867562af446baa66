//! WebP through libwebp, the reference decoder (what sharp and Pillow call too), by its C API.
//!
//! Why not `image`'s pure-Rust `image-webp`: on a 2 MP lossy photo it took 44 ms against
//! libwebp's 21 ms, 1.45x Pillow's whole thumbnail (docs/benchmarks.md), and it cannot scale
//! while decoding. libwebp can: its rescaler averages rows as they are decoded, so the full-size
//! image never exists and memory is bounded by the scaled one. `libwebp-sys` builds the vendored
//! library (1.6, after the 2023 Huffman-table fix, CVE-2023-4863) with `cc`, like `aws-lc-sys`
//! does for TLS, so the arm64 build needs nothing new. No maintained safe wrapper exposes
//! scaling, premultiplied output and the demuxer, so this module wraps the few calls itself and
//! keeps every `unsafe` here.
//!
//! Output is premultiplied RGBA when the frame has alpha (what flattening on white needs, and
//! what libwebp's rescaler averages correctly), RGB otherwise.

use image::metadata::Orientation;
use libwebp_sys as ffi;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct WebpError(pub &'static str);

/// A parsed WebP file: the canvas, the EXIF orientation and the first frame's bitstream.
pub struct WebpFile<'a> {
    demux: *mut ffi::WebPDemuxer,
    pub width: u32,
    pub height: u32,
    pub orientation: Orientation,
    /// The first frame: its bitstream (ALPH + VP8, or VP8L), where it sits on the canvas, its
    /// size and whether it has alpha.
    pub frame: Frame<'a>,
}

#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub bitstream: &'a [u8],
    pub left: u32,
    pub top: u32,
    pub width: u32,
    pub height: u32,
    pub has_alpha: bool,
}

impl Drop for WebpFile<'_> {
    fn drop(&mut self) {
        // SAFETY: `demux` came from WebPDemuxInternal, is non-null and is deleted once.
        unsafe { ffi::WebPDemuxDelete(self.demux) }
    }
}

impl<'a> WebpFile<'a> {
    /// Parses the container (simple or extended, still or animated) without decoding pixels.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, WebpError> {
        let data = ffi::WebPData {
            bytes: bytes.as_ptr(),
            size: bytes.len(),
        };
        // SAFETY: `data` points into `bytes`, which outlives the demuxer (`'a`); a partial file
        // is refused (allow_partial = 0), so every frame it reports is complete.
        let demux = unsafe {
            ffi::WebPDemuxInternal(
                &data,
                0,
                std::ptr::null_mut(),
                ffi::WEBP_DEMUX_ABI_VERSION as i32,
            )
        };
        if demux.is_null() {
            return Err(WebpError("not a complete WebP file"));
        }
        let mut file = WebpFile {
            demux,
            width: 0,
            height: 0,
            orientation: Orientation::NoTransforms,
            frame: Frame {
                bitstream: &[],
                left: 0,
                top: 0,
                width: 0,
                height: 0,
                has_alpha: false,
            },
        };
        // SAFETY: a live demuxer; the iterators are zeroed plain C structs it fills, released
        // before return; the slices they hand out point into `bytes` (the demuxer keeps no copy).
        unsafe {
            file.width = ffi::WebPDemuxGetI(demux, ffi::WebPFormatFeature::WEBP_FF_CANVAS_WIDTH);
            file.height = ffi::WebPDemuxGetI(demux, ffi::WebPFormatFeature::WEBP_FF_CANVAS_HEIGHT);
            let mut chunk: ffi::WebPChunkIterator = std::mem::zeroed();
            if ffi::WebPDemuxGetChunk(demux, c"EXIF".as_ptr(), 1, &mut chunk) != 0 {
                let exif = slice(bytes, chunk.chunk);
                file.orientation = Orientation::from_exif_chunk(strip_exif_header(exif))
                    .unwrap_or(Orientation::NoTransforms);
                ffi::WebPDemuxReleaseChunkIterator(&mut chunk);
            }
            let mut iter: ffi::WebPIterator = std::mem::zeroed();
            if ffi::WebPDemuxGetFrame(demux, 1, &mut iter) == 0 {
                return Err(WebpError("the WebP file has no frame"));
            }
            file.frame = Frame {
                bitstream: slice(bytes, iter.fragment),
                left: iter.x_offset.max(0) as u32,
                top: iter.y_offset.max(0) as u32,
                width: iter.width.max(0) as u32,
                height: iter.height.max(0) as u32,
                has_alpha: iter.has_alpha != 0,
            };
            ffi::WebPDemuxReleaseIterator(&mut iter);
        }
        Ok(file)
    }
}

/// The sub-slice of `bytes` a libwebp `WebPData` points at (empty if it points elsewhere).
fn slice(bytes: &[u8], data: ffi::WebPData) -> &[u8] {
    let start = (data.bytes as usize).wrapping_sub(bytes.as_ptr() as usize);
    bytes
        .get(start..start.saturating_add(data.size))
        .unwrap_or(&[])
}

/// Some writers put the JPEG APP1 "Exif\0\0" header in front of the TIFF data.
fn strip_exif_header(exif: &[u8]) -> &[u8] {
    exif.strip_prefix(b"Exif\0\0").unwrap_or(exif)
}

/// Decodes a frame's bitstream scaled to `width` x `height` (its own size: no scaling):
/// premultiplied RGBA when `alpha`, else RGB.
pub fn decode_frame(
    frame: &Frame<'_>,
    width: u32,
    height: u32,
    alpha: bool,
) -> Result<Vec<u8>, WebpError> {
    let channels = if alpha { 4 } else { 3 };
    let stride = width as usize * channels;
    let mut pixels = vec![0u8; stride * height as usize];
    let failed = WebpError("the WebP bitstream could not be decoded");
    // SAFETY: the config is initialised by libwebp for this ABI; the output buffer is ours
    // (external memory), `stride * height` bytes as declared, alive across WebPDecode; libwebp
    // frees its own internal state in WebPFreeDecBuffer (a no-op for external memory, called for
    // symmetry) and keeps no pointer into `pixels` after returning.
    unsafe {
        let mut config = ffi::WebPDecoderConfig::new().map_err(|_| failed.clone())?;
        if (width, height) != (frame.width, frame.height) {
            config.options.use_scaling = 1;
            config.options.scaled_width = width as i32;
            config.options.scaled_height = height as i32;
        }
        config.output.colorspace = if alpha {
            ffi::WEBP_CSP_MODE::MODE_rgbA
        } else {
            ffi::WEBP_CSP_MODE::MODE_RGB
        };
        config.output.is_external_memory = 1;
        config.output.u.RGBA = ffi::WebPRGBABuffer {
            rgba: pixels.as_mut_ptr(),
            stride: stride as i32,
            size: pixels.len(),
        };
        let status = ffi::WebPDecode(frame.bitstream.as_ptr(), frame.bitstream.len(), &mut config);
        ffi::WebPFreeDecBuffer(&mut config.output);
        if status != ffi::VP8StatusCode::VP8_STATUS_OK {
            return Err(failed);
        }
    }
    Ok(pixels)
}
