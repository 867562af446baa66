//! GIF's LZW decoded straight into the frame's index buffer.
//!
//! Written here rather than taken from `weezl` (the `gif` crate's decoder): weezl spent 12 of the
//! 14 ms a 2 MP GIF's thumbnail took, which left it level with Pillow (docs/benchmarks.md). Every
//! LZW string is an earlier string plus one byte, and the first time any string is written it
//! lands in the output, so a code is an (offset, length) into the output written so far: decoding
//! one is one copy from earlier in the same buffer, mostly a single 16-byte move, with no string
//! table to chase. Tested against the `gif` crate on every kind of stream (tests below), fuzzed
//! through the render target.

/// The largest code GIF allows: 12 bits.
const MAX_CODES: usize = 4096;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct LzwError(pub &'static str);

/// Decodes `data` (the frame's LZW bytes, sub-blocks joined) with `min_code_size` into `out`,
/// which it fills exactly: a stream that ends (end code or no data) before is truncated, an
/// error; what follows a full frame is ignored, as decoders do.
pub fn decode(min_code_size: u8, data: &[u8], out: &mut [u8]) -> Result<(), LzwError> {
    if !(1..=11).contains(&min_code_size) {
        return Err(LzwError("bad LZW minimum code size"));
    }
    let clear = 1usize << min_code_size;
    let end = clear + 1;
    // Where each code's string was first written, and its length (codes below `clear` are the
    // byte itself).
    let mut offsets = [0u32; MAX_CODES];
    let mut lengths = [0u16; MAX_CODES];
    let mut next = clear + 2;
    let mut size = u32::from(min_code_size) + 1;
    // The previous code's string (start, length) in `out`, none right after a clear code.
    let mut previous: Option<(usize, usize)> = None;
    let (mut bits, mut count, mut read) = (0u64, 0u32, 0usize);
    let mut at = 0usize;
    while at < out.len() {
        if count < size {
            // Refill whole bytes, LSB first.
            while count <= 56 {
                let Some(&byte) = data.get(read) else {
                    break;
                };
                bits |= u64::from(byte) << count;
                count += 8;
                read += 1;
            }
            if count < size {
                return Err(LzwError("LZW data ends before the frame is complete"));
            }
        }
        let code = (bits & ((1 << size) - 1)) as usize;
        bits >>= size;
        count -= size;
        if code == clear {
            (next, size, previous) = (clear + 2, u32::from(min_code_size) + 1, None);
            continue;
        }
        if code == end {
            return Err(LzwError("LZW end code before the frame is complete"));
        }
        let start = at;
        let length = if code < clear {
            out[at] = code as u8;
            1
        } else if code < next {
            let (from, length) = (offsets[code] as usize, usize::from(lengths[code]));
            copy_back(out, from, at, length);
            length
        } else if code == next
            && let Some((from, length)) = previous
        {
            // The code being defined: the previous string plus its own first byte.
            copy_back(out, from, at, length);
            let first = out[from];
            if let Some(last) = out.get_mut(at + length) {
                *last = first;
            }
            length + 1
        } else {
            return Err(LzwError("LZW code not yet defined"));
        };
        if let Some((from, previous_length)) = previous
            && next < MAX_CODES
        {
            // The previous string and this one's first byte sit next to each other in `out`.
            debug_assert_eq!(from + previous_length, start);
            offsets[next] = from as u32;
            lengths[next] = (previous_length + 1) as u16;
            next += 1;
            if next == 1 << size && size < 12 {
                size += 1;
            }
        }
        previous = Some((start, length));
        at += length;
    }
    Ok(())
}

/// Copies `length` bytes from `from` to `at` (`from + length <= at`: a string written earlier),
/// clipped to the end of `out`. Most strings are short: one 16-byte load and store, whose excess
/// is overwritten by the strings that follow.
#[inline(always)]
fn copy_back(out: &mut [u8], from: usize, at: usize, length: usize) {
    if length <= 16 && at + 16 <= out.len() {
        let chunk: [u8; 16] = out[from..from + 16].try_into().expect("16 bytes");
        out[at..at + 16].copy_from_slice(&chunk);
    } else {
        let length = length.min(out.len() - at);
        out.copy_within(from..from + length, at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `gif` crate's encoder writes the stream, its decoder the reference indices, ours the
    /// same from the raw LZW bytes.
    fn round_trip(width: u16, height: u16, indices: &[u8], palette_size: usize) {
        let palette: Vec<u8> = (0..palette_size * 3).map(|i| (i * 37) as u8).collect();
        let mut file = Vec::new();
        {
            let mut encoder = gif::Encoder::new(&mut file, width, height, &palette).unwrap();
            let frame = gif::Frame::from_indexed_pixels(width, height, indices.to_vec(), None);
            encoder.write_frame(&frame).unwrap();
        }
        let mut options = gif::DecodeOptions::new();
        options.set_color_output(gif::ColorOutput::Indexed);
        let mut reference = options.read_info(file.as_slice()).unwrap();
        reference.next_frame_info().unwrap();
        let mut expected = vec![0u8; reference.buffer_size()];
        reference.read_into_buffer(&mut expected).unwrap();

        let mut options = gif::DecodeOptions::new();
        options.skip_frame_decoding(true);
        let mut raw = options.read_info(file.as_slice()).unwrap();
        let lzw = raw.read_next_frame().unwrap().unwrap().buffer.to_vec();
        let mut ours = vec![0u8; expected.len()];
        decode(lzw[0], &lzw[1..], &mut ours).unwrap();
        assert_eq!(ours, expected, "{width}x{height}, {palette_size} colours");
        assert!(decode(lzw[0], &lzw[1..lzw.len() / 2], &mut ours).is_err());
    }

    #[test]
    fn matches_the_gif_crate_on_every_kind_of_stream() {
        let mut state = 7u32;
        let mut noise = |n: usize, colours: u32| -> Vec<u8> {
            (0..n)
                .map(|_| {
                    state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    ((state >> 16) % colours) as u8
                })
                .collect()
        };
        // Noise fills the 4096-code table quickly (a full table, then clear codes).
        round_trip(640, 480, &noise(640 * 480, 256), 256);
        // Two colours: the smallest code size, codes growing from 3 bits.
        round_trip(300, 200, &noise(300 * 200, 2), 2);
        // One colour: long runs, every code defined by the previous one (KwKwK).
        round_trip(500, 400, &vec![1u8; 500 * 400], 4);
        // Gradients: long repeated strings, copies over 16 bytes.
        let gradient: Vec<u8> = (0..800u32 * 600)
            .map(|i| ((i % 800) / 40 + (i / 800) / 100) as u8)
            .collect();
        round_trip(800, 600, &gradient, 64);
        round_trip(1, 1, &[0], 2);
    }

    #[test]
    fn invalid_streams_are_errors() {
        let mut out = [0u8; 16];
        assert!(decode(0, &[0xFF; 8], &mut out).is_err());
        assert!(decode(12, &[0xFF; 8], &mut out).is_err());
        // Code 7 with min size 2 (clear 4, end 5, next 6): not yet defined.
        assert!(decode(2, &[0b0000_0111, 0], &mut out).is_err());
        assert!(decode(8, &[], &mut out).is_err());
    }
}
