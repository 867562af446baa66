//! JPEG decoded at 1/8 scale from DC coefficients only, or at 1/4 scale from the four lowest
//! coefficients of each block: shrink-on-load without a full decoder.
//!
//! - At 1/8 scale each 8x8 block becomes one pixel whose value is the block's dequantised DC
//!   coefficient / 8 + 128 (the 1x1 inverse DCT, what libjpeg's `scale_denom = 8` and sharp's
//!   shrink-on-load compute).
//! - At 1/4 scale each block becomes 2x2 pixels: the exact mean of each 4x4 quadrant of the
//!   block's full inverse DCT, taking coefficients (0,0), (0,1), (1,0) and (1,1) (zigzag 0, 1, 2
//!   and 4). libjpeg's reduced 2x2 IDCT also adds the odd frequencies 3, 5 and 7, which quantise
//!   to zero in most blocks of a photo; jpeg-decoder's takes the same four with unit weights.
//!
//! Where the time goes:
//! - Sequential (SOF0/SOF1): AC coefficients share the scan with DC, so they still have to be
//!   entropy-decoded to find where the next block starts, but past the kept ones their values are
//!   never needed: each is skipped with one table lookup and one shift (code length + magnitude
//!   bits). That is why this beats a general decoder's scaled path.
//! - Progressive (SOF2): only the DC scans are decoded (the first, and each refinement's one bit a
//!   block), and at 1/4 scale the first scan of each AC band that starts at or below zigzag 4;
//!   every other AC scan, most of the file, is skipped to the next marker without entropy
//!   decoding. AC refinement scans are among those skipped: decoding one needs to know which of
//!   the band's 63 coefficients are already nonzero, which means decoding every AC scan. So a
//!   progressive file's kept AC coefficients have the precision of their first scan (libjpeg's
//!   default script: the low 2 bits of luma, 1 of chroma, reconstructed at the interval's middle).
//!
//! Memory is one `i32` per kept coefficient, block and component (1/64 of the pixels at 1/8
//! scale, 1/16 at 1/4; never the coefficient set). Handles 8-bit Huffman frames, gray, YCbCr,
//! CMYK and YCCK (Adobe transform 0 or 2), interleaved or one-component scans, sampling factors
//! 1, 2 and 4 (4:4:4 to 4:1:1), restart intervals. Anything else (arithmetic, lossless, 12-bit,
//! RGB-coded, a sampling factor of 3) returns `Ok(None)` for jpeg-decoder.

use image::metadata::Orientation;

/// How far the decoder shrinks: each 8x8 block becomes 1x1 or 2x2 pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    Eighth,
    Quarter,
}

impl Scale {
    /// Output pixels per block side.
    pub const fn per_block(self) -> usize {
        match self {
            Self::Eighth => 1,
            Self::Quarter => 2,
        }
    }

    /// Source pixels per output pixel side: 8 or 4.
    pub const fn denominator(self) -> u32 {
        8 / self.per_block() as u32
    }

    /// The coefficients kept per block, by zigzag index, in the order they are stored: (0,0),
    /// then for 1/4 scale (0,1), (1,0) and (1,1), row-major.
    const fn kept(self) -> &'static [u32] {
        match self {
            Self::Eighth => &[0],
            Self::Quarter => &[0, 1, 2, 4],
        }
    }

    /// The highest zigzag index kept.
    const fn last_kept(self) -> u32 {
        match self {
            Self::Eighth => 0,
            Self::Quarter => QUARTER_LAST,
        }
    }

    /// Where the coefficient at zigzag index `k` is stored in a block's kept ones
    /// ([`Scale::kept`]'s order), if it is kept.
    #[inline(always)]
    const fn slot(self, k: u32) -> Option<usize> {
        match (self, k) {
            (_, 0) => Some(0),
            (Self::Quarter, 1) => Some(1),
            (Self::Quarter, 2) => Some(2),
            (Self::Quarter, 4) => Some(3),
            _ => None,
        }
    }
}

/// The last zigzag index 1/4 scale keeps.
const QUARTER_LAST: u32 = 4;

/// A decoded 1/8- or 1/4-scale image and the EXIF orientation.
pub struct DcImage {
    pub width: u32,
    pub height: u32,
    pub colour: Colour,
    pub pixels: Vec<u8>,
    pub orientation: Orientation,
}

/// How [`DcImage::pixels`] are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colour {
    /// One byte a pixel.
    Gray,
    /// Three bytes a pixel.
    Rgb,
    /// Four bytes a pixel: C, M, Y, K ink amounts, as jpeg-decoder hands CMYK out.
    Cmyk,
}

impl Colour {
    pub fn channels(self) -> usize {
        match self {
            Self::Gray => 1,
            Self::Rgb => 3,
            Self::Cmyk => 4,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct DcError(pub &'static str);

/// What the headers say before any scan: the frame's size and the EXIF orientation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub width: u32,
    pub height: u32,
    pub orientation: Orientation,
}

/// The frame size and orientation without decoding anything, for the caller's limits and
/// scale choice.
pub fn header(data: &[u8]) -> Option<Header> {
    let mut orientation = Orientation::NoTransforms;
    let mut pos = 2;
    while pos + 4 <= data.len() {
        if data[pos] != 0xFF {
            return None;
        }
        let marker = data[pos + 1];
        let len = usize::from(u16::from_be_bytes([data[pos + 2], data[pos + 3]]));
        let seg = data.get(pos + 4..pos + 2 + len)?;
        match marker {
            0xE1 if seg.starts_with(b"Exif\0\0") => {
                orientation =
                    Orientation::from_exif_chunk(&seg[6..]).unwrap_or(Orientation::NoTransforms);
            }
            0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF if seg.len() >= 5 => {
                return Some(Header {
                    width: u32::from(u16::from_be_bytes([seg[3], seg[4]])),
                    height: u32::from(u16::from_be_bytes([seg[1], seg[2]])),
                    orientation,
                });
            }
            _ => {}
        }
        pos += 2 + len;
    }
    None
}

/// Codes up to this many bits (and, for AC, code + magnitude bits) resolve in one lookup.
const LUT_BITS: u32 = 12;
/// Lookup entry flags: a complete AC skip (code + magnitude), or a plain short code.
const SKIP: u16 = 0x8000;
const SHORT: u16 = 0x4000;

/// A Huffman table: a 9-bit lookup for short codes, canonical decoding for long ones.
#[derive(Clone)]
struct Huffman {
    /// `SHORT | len << 8 | symbol` for codes of at most `LUT_BITS`; for AC tables, when code and
    /// magnitude bits fit too, `SKIP | total << 8 | symbol` so a skipped coefficient costs one
    /// lookup and one shift; 0 for longer codes.
    lut: Box<[u16; 1 << LUT_BITS]>,
    /// AC tables only: for each 12-bit window, every complete coefficient that fits in it at
    /// once: `bits used | coefficients advanced << 5 | END_OF_BLOCK`; 0 when not even one fits.
    multi: Box<[u16; 1 << LUT_BITS]>,
    max_code: [i32; 18],
    val_offset: [i32; 17],
    values: Vec<u8>,
}

impl Huffman {
    fn new(counts: &[u8; 16], values: Vec<u8>, ac: bool) -> Result<Self, DcError> {
        let mut lut = Box::new([0u16; 1 << LUT_BITS]);
        let mut max_code = [-1i32; 18];
        let mut val_offset = [0i32; 17];
        let mut code: i32 = 0;
        let mut k: usize = 0;
        for len in 1..=16usize {
            let n = usize::from(counts[len - 1]);
            // Canonical codes of this length are `code..code + n`: they must fit in `len` bits.
            if code as usize + n > 1 << len {
                return Err(DcError("bad Huffman table"));
            }
            val_offset[len] = k as i32 - code;
            for _ in 0..n {
                let symbol = *values.get(k).ok_or(DcError("bad Huffman table"))?;
                if len as u32 <= LUT_BITS {
                    let shift = LUT_BITS - len as u32;
                    let magnitude = u32::from(symbol & 15);
                    let mut entry = SHORT | ((len as u16) << 8) | u16::from(symbol);
                    if ac && len as u32 + magnitude <= LUT_BITS && symbol != 0x00 && symbol != 0xF0
                    {
                        entry = SKIP | (((len as u32 + magnitude) as u16) << 8) | u16::from(symbol);
                    }
                    for fill in 0..(1u32 << shift) {
                        lut[((code as u32) << shift | fill) as usize] = entry;
                    }
                }
                code += 1;
                k += 1;
            }
            if n > 0 {
                max_code[len] = code - 1;
            }
            code <<= 1;
        }
        max_code[17] = i32::MAX;
        let multi = if ac {
            multi_skip_table(&lut)
        } else {
            Box::new([0u16; 1 << LUT_BITS])
        };
        Ok(Self {
            lut,
            multi,
            max_code,
            val_offset,
            values,
        })
    }
}

/// Marks a multi-skip entry that ends the block.
const END_OF_BLOCK: u16 = 0x8000;

/// Builds the multi-coefficient skip table from the single-symbol one: starting at each 12-bit
/// window, walk complete symbols (code + magnitude inside the window) until one does not fit or
/// the block ends.
fn multi_skip_table(lut: &[u16; 1 << LUT_BITS]) -> Box<[u16; 1 << LUT_BITS]> {
    let mut multi = Box::new([0u16; 1 << LUT_BITS]);
    for window in 0..(1u32 << LUT_BITS) {
        let (mut used, mut advanced, mut end) = (0u32, 0u32, false);
        while used < LUT_BITS {
            // The rest of the window, left-aligned; codes reaching past it are not taken.
            let entry = lut[((window << used) & ((1 << LUT_BITS) - 1)) as usize];
            let n = u32::from((entry >> 8) & 0x1F);
            let symbol = entry as u8;
            let fits = entry != 0 && used + n <= LUT_BITS;
            if fits && entry & SKIP != 0 {
                used += n;
                advanced += u32::from((entry >> 4) & 0x0F) + 1;
            } else if fits && entry & SHORT != 0 && (symbol == 0x00 || symbol == 0xF0) {
                used += n;
                if symbol == 0x00 {
                    end = true;
                    break;
                }
                advanced += 16;
            } else {
                break;
            }
        }
        if used > 0 && advanced < 64 {
            multi[window as usize] =
                used as u16 | (advanced as u16) << 5 | if end { END_OF_BLOCK } else { 0 };
        }
    }
    multi
}

/// A coefficient's `size` magnitude bits as a signed value (T.81 F.2.2.1 EXTEND).
#[inline(always)]
fn extend(value: i32, size: u32) -> i32 {
    if size > 0 && value < 1 << (size - 1) {
        value - (1 << size) + 1
    } else {
        value
    }
}

/// Entropy-coded data with byte stuffing removed; bits are kept left-aligned in a u64.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    bits: u64,
    count: u32,
    /// A marker (or the end of data) was reached: zeros are fed from here on.
    hit_marker: bool,
    /// Zero bytes fed past it. A valid scan needs only the few a refill looks ahead; many more
    /// mean the data was cut short.
    padding: usize,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8], pos: usize) -> Self {
        Self {
            data,
            pos,
            bits: 0,
            count: 0,
            hit_marker: false,
            padding: 0,
        }
    }

    #[inline(always)]
    fn refill(&mut self) {
        // Fast path: 8 bytes with no 0xFF among them need no unstuffing.
        if !self.hit_marker && self.pos + 8 <= self.data.len() {
            let word = u64::from_be_bytes(
                self.data[self.pos..self.pos + 8]
                    .try_into()
                    .expect("8 bytes"),
            );
            let inverted = !word;
            if (inverted.wrapping_sub(0x0101_0101_0101_0101) & !inverted & 0x8080_8080_8080_8080)
                == 0
            {
                let take = (64 - self.count) / 8;
                self.bits |= (word >> (64 - 8 * take)) << (64 - self.count - 8 * take);
                self.count += 8 * take;
                self.pos += take as usize;
                return;
            }
        }
        while self.count <= 56 {
            let mut byte = 0u8;
            if self.hit_marker {
                self.padding += 1;
            } else {
                match self.data.get(self.pos) {
                    Some(0xFF) => match self.data.get(self.pos + 1) {
                        Some(0x00) => {
                            byte = 0xFF;
                            self.pos += 2;
                        }
                        _ => self.hit_marker = true,
                    },
                    Some(&b) => {
                        byte = b;
                        self.pos += 1;
                    }
                    None => self.hit_marker = true,
                }
            }
            self.bits |= u64::from(byte) << (56 - self.count);
            self.count += 8;
        }
    }

    #[inline(always)]
    fn peek(&self, n: u32) -> u32 {
        (self.bits >> (64 - n)) as u32
    }

    #[inline(always)]
    fn consume(&mut self, n: u32) {
        self.bits <<= n;
        self.count -= n;
    }

    #[inline(always)]
    fn decode(&mut self, table: &Huffman) -> Result<u8, DcError> {
        if self.count < 16 {
            self.refill();
        }
        let entry = table.lut[self.peek(LUT_BITS) as usize];
        if entry & SHORT != 0 {
            self.consume(u32::from((entry >> 8) & 0x1F));
            return Ok(entry as u8);
        }
        if entry & SKIP != 0 {
            // An AC skip entry: its length counts the magnitude bits that follow the code.
            self.consume(u32::from((entry >> 8) & 0x1F) - u32::from(entry & 0x0F));
            return Ok(entry as u8);
        }
        for len in LUT_BITS + 1..=16u32 {
            let code = self.peek(len) as i32;
            if code <= table.max_code[len as usize] {
                self.consume(len);
                let index = (table.val_offset[len as usize] + code) as usize;
                return table
                    .values
                    .get(index)
                    .copied()
                    .ok_or(DcError("corrupt Huffman code"));
            }
        }
        Err(DcError("corrupt Huffman code"))
    }

    /// A coefficient's `size` magnitude bits, as a signed value.
    #[inline(always)]
    fn receive_extend(&mut self, size: u32) -> i32 {
        extend(self.receive(size) as i32, size)
    }

    /// `n` raw bits (at most 16), as an unsigned number.
    #[inline(always)]
    fn receive(&mut self, n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        if self.count < n {
            self.refill();
        }
        let value = self.peek(n);
        self.consume(n);
        value
    }

    /// Decodes a sequential block's AC coefficients up to the last one 1/4 scale keeps, storing
    /// the kept ones in `kept` (slot 0 is the DC). Returns the zigzag index to go on skipping
    /// from, 64 when the block has ended.
    #[inline(always)]
    fn quarter_ac(&mut self, table: &Huffman, kept: &mut [i32]) -> Result<u32, DcError> {
        let mut k = 1u32;
        while k <= QUARTER_LAST {
            if self.count < 16 {
                self.refill();
            }
            let window = self.peek(LUT_BITS);
            let entry = table.lut[window as usize];
            let (run, size, value) = if entry & SKIP != 0 {
                // Code and magnitude bits in one window: one lookup, one shift.
                let (total, size) = (u32::from((entry >> 8) & 0x1F), u32::from(entry & 0x0F));
                self.consume(total);
                let raw = ((window >> (LUT_BITS - total)) & ((1 << size) - 1)) as i32;
                (u32::from((entry >> 4) & 0x0F), size, extend(raw, size))
            } else {
                let symbol = self.decode(table)?;
                let (run, size) = (u32::from(symbol >> 4), u32::from(symbol & 15));
                (run, size, self.receive_extend(size))
            };
            if size == 0 {
                if run == 15 {
                    k += 16;
                    continue;
                }
                return Ok(64); // end of block
            }
            k += run;
            if k > 63 {
                return Err(DcError("AC coefficients overrun the block"));
            }
            if let Some(slot) = Scale::Quarter.slot(k) {
                kept[slot] = value;
            }
            k += 1;
        }
        Ok(k)
    }

    /// Skips a block's AC coefficients from zigzag index `from` to the end of the block. The hot
    /// loop of the whole decoder: the bit buffer stays in registers and the common case is one
    /// lookup and one shift.
    #[inline(always)]
    fn skip_ac(&mut self, table: &Huffman, from: u32) -> Result<(), DcError> {
        let lut: &[u16; 1 << LUT_BITS] = &table.lut;
        let (mut bits, mut count) = (self.bits, self.count);
        let mut k = from;
        while k < 64 {
            if count < 26 {
                (self.bits, self.count) = (bits, count);
                self.refill();
                (bits, count) = (self.bits, self.count);
            }
            let window = (bits >> (64 - LUT_BITS)) as usize;
            let many = table.multi[window];
            // A block whose coefficient 63 is coded has no end-of-block symbol: bits after it
            // that read as one belong to the next block, so an EOB is taken only before k = 64.
            let limit = if many & END_OF_BLOCK != 0 { 63 } else { 64 };
            if many != 0 && k + u32::from((many >> 5) & 0x7F) <= limit {
                let n = u32::from(many & 0x1F);
                bits <<= n;
                count -= n;
                if many & END_OF_BLOCK != 0 {
                    break;
                }
                k += u32::from((many >> 5) & 0x7F);
                continue;
            }
            let entry = lut[window];
            if entry & SKIP != 0 {
                let n = u32::from((entry >> 8) & 0x1F);
                bits <<= n;
                count -= n;
                k += u32::from((entry >> 4) & 0x0F) + 1;
                continue;
            }
            let symbol = if entry & SHORT != 0 {
                let n = u32::from((entry >> 8) & 0x1F);
                bits <<= n;
                count -= n;
                entry as u8
            } else {
                (self.bits, self.count) = (bits, count);
                let symbol = self.decode(table)?;
                (bits, count) = (self.bits, self.count);
                symbol
            };
            let (run, size) = (u32::from(symbol >> 4), u32::from(symbol & 15));
            if size == 0 {
                if run == 15 {
                    k += 16;
                    continue;
                }
                break; // end of block
            }
            if count < size {
                (self.bits, self.count) = (bits, count);
                self.refill();
                (bits, count) = (self.bits, self.count);
            }
            bits <<= size;
            count -= size;
            k += run + 1;
        }
        (self.bits, self.count) = (bits, count);
        if k > 64 {
            return Err(DcError("AC coefficients overrun the block"));
        }
        Ok(())
    }
}

struct Component {
    id: u8,
    h: usize,
    v: usize,
    quant: usize,
    dc_table: usize,
    ac_table: usize,
    /// Dequantisation happens at the end: the kept coefficients of each block
    /// ([`Scale::kept`], one at 1/8 scale, four at 1/4), the plane padded to whole MCUs
    /// (`mcus_x * h` blocks a row). The only per-image memory of this path: 1/64 (or 1/16) of the
    /// pixels, 4 bytes each, per component.
    coefs: Vec<i32>,
    /// A first DC scan (or a sequential scan) has filled the DC coefficients of `coefs`.
    seen: bool,
}

/// What the frame header says, once it has been read.
struct Frame {
    progressive: bool,
    width: usize,
    height: usize,
    h_max: usize,
    v_max: usize,
    mcus_x: usize,
    mcus_y: usize,
}

/// One scan's components (indexes into the frame's) and its spectral selection and
/// successive approximation parameters.
struct Scan {
    components: Vec<usize>,
    spectral_start: u8,
    spectral_end: u8,
    high: u8,
    low: u8,
}

/// Decodes `data` at `scale`, or `Ok(None)` when it is not a JPEG this path handles.
pub fn decode(data: &[u8], scale: Scale) -> Result<Option<DcImage>, DcError> {
    if data.len() < 4 || data[0] != 0xFF || data[1] != 0xD8 {
        return Ok(None);
    }
    let mut quant = [[0u16; 64]; 4];
    let mut dc_tables: [Option<Huffman>; 4] = Default::default();
    let mut ac_tables: [Option<Huffman>; 4] = Default::default();
    let mut components: Vec<Component> = Vec::new();
    let mut frame: Option<Frame> = None;
    let mut restart_interval = 0usize;
    let mut orientation = Orientation::NoTransforms;
    let mut adobe_transform: Option<u8> = None;
    let mut pos = 2;
    loop {
        while data.get(pos) == Some(&0xFF) && data.get(pos + 1) == Some(&0xFF) {
            pos += 1; // fill bytes
        }
        if pos + 2 <= data.len() && data[pos] == 0xFF && data[pos + 1] == 0xD9 {
            break; // end of image
        }
        if pos + 4 > data.len() || data[pos] != 0xFF {
            return Err(DcError("truncated or corrupt header"));
        }
        let marker = data[pos + 1];
        let len = usize::from(u16::from_be_bytes([data[pos + 2], data[pos + 3]]));
        let seg = data
            .get(pos + 4..pos + 2 + len)
            .ok_or(DcError("truncated segment"))?;
        match marker {
            0xE1 if seg.starts_with(b"Exif\0\0") => {
                orientation =
                    Orientation::from_exif_chunk(&seg[6..]).unwrap_or(Orientation::NoTransforms);
            }
            0xEE if seg.starts_with(b"Adobe") && seg.len() >= 12 => adobe_transform = Some(seg[11]),
            0xDB => read_quant_tables(seg, &mut quant)?,
            0xC4 => read_huffman_tables(seg, &mut dc_tables, &mut ac_tables)?,
            0xC0..=0xC2 => {
                if frame.is_some() {
                    return Err(DcError("a second frame header"));
                }
                match read_frame(seg, marker == 0xC2, scale)? {
                    Some((f, c)) => (frame, components) = (Some(f), c),
                    None => return Ok(None),
                }
            }
            // Lossless, hierarchical and arithmetic frames: the general decoder.
            0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return Ok(None),
            0xDD => {
                restart_interval = usize::from(u16::from_be_bytes(
                    seg.get(..2)
                        .ok_or(DcError("truncated DRI"))?
                        .try_into()
                        .expect("2 bytes"),
                ))
            }
            0xDA => {
                let Some(frame) = &frame else {
                    return Err(DcError("scan before the frame header"));
                };
                if !supported_colour(&components, adobe_transform) {
                    return Ok(None);
                }
                let Some(scan) = read_scan(seg, frame, &mut components)? else {
                    return Ok(None);
                };
                let start = pos + 2 + len;
                let tables = ScanTables {
                    dc: &dc_tables,
                    ac: &ac_tables,
                };
                let end = if scan.spectral_start == 0 {
                    let end = decode_dc_scan(
                        data,
                        start,
                        frame,
                        &mut components,
                        &scan,
                        &tables,
                        restart_interval,
                        scale,
                    )?;
                    next_marker(data, end)
                } else if scan.high == 0 && u32::from(scan.spectral_start) <= scale.last_kept() {
                    // The first scan of a progressive AC band holding kept coefficients.
                    let end = decode_ac_first_scan(
                        data,
                        start,
                        frame,
                        &mut components[scan.components[0]],
                        &scan,
                        &tables,
                        restart_interval,
                        scale,
                    )?;
                    next_marker(data, end)
                } else {
                    // Every other progressive AC scan: its bytes are skipped without entropy
                    // decoding, up to the next marker.
                    next_marker(data, start)
                };
                match end {
                    Some(end) => pos = end,
                    // A sequential file cut after its last scan (no EOI) still has every block;
                    // a progressive one cut anywhere is truncated, as the general decoder says.
                    None if !frame.progressive && components.iter().all(|c| c.seen) => break,
                    None => return Err(DcError("entropy-coded data ends early (truncated file)")),
                }
                continue;
            }
            0xD9 => break,
            _ => {}
        }
        pos += 2 + len;
    }
    let Some(frame) = frame else {
        return Err(DcError("no frame before the end of image"));
    };
    if components.iter().any(|c| !c.seen) {
        return Err(DcError("a component has no scan (truncated file)"));
    }
    Ok(Some(assemble(
        &frame,
        &components,
        &quant,
        scale,
        adobe_transform,
        orientation,
    )))
}

/// DQT: tables kept in zigzag order, as stored.
fn read_quant_tables(seg: &[u8], quant: &mut [[u16; 64]; 4]) -> Result<(), DcError> {
    let mut i = 0;
    while i < seg.len() {
        let (precision, id) = (seg[i] >> 4, usize::from(seg[i] & 15));
        let size = if precision == 0 { 64 } else { 128 };
        let table = seg
            .get(i + 1..i + 1 + size)
            .ok_or(DcError("truncated DQT"))?;
        if id < 4 {
            for (k, q) in quant[id].iter_mut().enumerate() {
                *q = if precision == 0 {
                    u16::from(table[k])
                } else {
                    u16::from_be_bytes([table[2 * k], table[2 * k + 1]])
                };
            }
        }
        i += 1 + size;
    }
    Ok(())
}

fn read_huffman_tables(
    seg: &[u8],
    dc_tables: &mut [Option<Huffman>; 4],
    ac_tables: &mut [Option<Huffman>; 4],
) -> Result<(), DcError> {
    let mut i = 0;
    while i + 17 <= seg.len() {
        let (class, id) = (seg[i] >> 4, usize::from(seg[i] & 15));
        let counts: [u8; 16] = seg[i + 1..i + 17].try_into().expect("16 bytes");
        let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
        let values = seg
            .get(i + 17..i + 17 + total)
            .ok_or(DcError("truncated DHT"))?
            .to_vec();
        if id >= 4 {
            return Err(DcError("bad Huffman table id"));
        }
        let table = Huffman::new(&counts, values, class == 1)?;
        if class == 0 {
            dc_tables[id] = Some(table)
        } else {
            ac_tables[id] = Some(table)
        }
        i += 17 + total;
    }
    Ok(())
}

/// SOF0/1/2: 8-bit samples, 1, 3 or 4 components, sampling factors 1, 2 or 4. `None` for frames the
/// general decoder should take.
fn read_frame(
    seg: &[u8],
    progressive: bool,
    scale: Scale,
) -> Result<Option<(Frame, Vec<Component>)>, DcError> {
    if seg.len() < 6 || seg[0] != 8 {
        return Ok(None);
    }
    let height = usize::from(u16::from_be_bytes([seg[1], seg[2]]));
    let width = usize::from(u16::from_be_bytes([seg[3], seg[4]]));
    let n = usize::from(seg[5]);
    if !matches!(n, 1 | 3 | 4) || seg.len() < 6 + 3 * n || width == 0 || height == 0 {
        return Ok(None);
    }
    let mut components = Vec::with_capacity(n);
    for c in 0..n {
        let s = &seg[6 + 3 * c..9 + 3 * c];
        let (h, v) = (usize::from(s[1] >> 4), usize::from(s[1] & 15));
        // Powers of two only (1, 2, 4: 4:1:1 among them), so a component's block for an output
        // pixel is a shift away.
        if !matches!(h, 1 | 2 | 4) || !matches!(v, 1 | 2 | 4) || s[2] >= 4 {
            return Ok(None);
        }
        if components.iter().any(|other: &Component| other.id == s[0]) {
            return Err(DcError("two components with one id"));
        }
        components.push(Component {
            id: s[0],
            h,
            v,
            quant: usize::from(s[2]),
            dc_table: 0,
            ac_table: 0,
            coefs: Vec::new(),
            seen: false,
        });
    }
    let h_max = components.iter().map(|c| c.h).max().unwrap_or(1);
    let v_max = components.iter().map(|c| c.v).max().unwrap_or(1);
    let (mcus_x, mcus_y) = (width.div_ceil(8 * h_max), height.div_ceil(8 * v_max));
    for c in &mut components {
        c.coefs = vec![0; mcus_x * c.h * mcus_y * c.v * scale.kept().len()];
    }
    Ok(Some((
        Frame {
            progressive,
            width,
            height,
            h_max,
            v_max,
            mcus_x,
            mcus_y,
        },
        components,
    )))
}

/// The colour models this path converts as jpeg-decoder does: gray, YCbCr, and four-component
/// CMYK or YCCK (Adobe transform 0 or 2). RGB-coded three-component images (Adobe transform 0,
/// or the component ids libjpeg writes for RGB) and anything unusual go to the general decoder.
fn supported_colour(components: &[Component], adobe_transform: Option<u8>) -> bool {
    let ids: Vec<u8> = components.iter().map(|c| c.id).collect();
    match components.len() {
        1 => true,
        3 => {
            adobe_transform != Some(0)
                && !matches!(ids.as_slice(), [82, 71, 66] | [114, 103, 98] | [1, 34, 35])
        }
        4 => matches!(adobe_transform, None | Some(0) | Some(2)),
        _ => false,
    }
}

/// SOS: which components, which tables, which coefficients. `None` for a scan this path does not
/// read (a sequential scan that is not the whole spectrum).
fn read_scan(
    seg: &[u8],
    frame: &Frame,
    components: &mut [Component],
) -> Result<Option<Scan>, DcError> {
    let n = usize::from(*seg.first().ok_or(DcError("truncated SOS"))?);
    if n == 0 || n > 4 || seg.len() < 4 + 2 * n {
        return Err(DcError("corrupt scan header"));
    }
    let mut chosen = Vec::with_capacity(n);
    for i in 0..n {
        let (id, tables) = (seg[1 + 2 * i], seg[2 + 2 * i]);
        let index = components
            .iter()
            .position(|c| c.id == id)
            .ok_or(DcError("scan names an unknown component"))?;
        if chosen.contains(&index) {
            return Err(DcError("scan names a component twice"));
        }
        let c = &mut components[index];
        c.dc_table = usize::from(tables >> 4) & 3;
        c.ac_table = usize::from(tables & 15) & 3;
        chosen.push(index);
    }
    let (spectral_start, spectral_end) = (seg[1 + 2 * n], seg[2 + 2 * n]);
    let (high, low) = (seg[3 + 2 * n] >> 4, seg[3 + 2 * n] & 15);
    if frame.progressive {
        // DC scans carry only DC; AC scans one component each (ITU T.81 G.1.1.1.1).
        let valid = if spectral_start == 0 {
            spectral_end == 0
        } else {
            spectral_start <= spectral_end && spectral_end <= 63 && n == 1
        };
        if !valid || low > 13 {
            return Err(DcError("corrupt progressive scan header"));
        }
        if spectral_start == 0 && high > 0 && chosen.iter().any(|&i| !components[i].seen) {
            return Err(DcError("DC refinement before the first DC scan"));
        }
    } else if spectral_start != 0 || spectral_end != 63 || high != 0 || low != 0 {
        return Ok(None);
    }
    Ok(Some(Scan {
        components: chosen,
        spectral_start,
        spectral_end,
        high,
        low,
    }))
}

struct ScanTables<'a> {
    dc: &'a [Option<Huffman>; 4],
    ac: &'a [Option<Huffman>; 4],
}

/// A scan that carries DC coefficients: sequential (DC, the kept AC coefficients, the rest of
/// the block's AC skipped by entropy decoding), or progressive DC first (Ah = 0) or refinement
/// (one bit per block). Returns the position where its entropy-coded data ends.
#[allow(clippy::too_many_arguments)]
fn decode_dc_scan(
    data: &[u8],
    start: usize,
    frame: &Frame,
    components: &mut [Component],
    scan: &Scan,
    tables: &ScanTables<'_>,
    restart_interval: usize,
    scale: Scale,
) -> Result<usize, DcError> {
    let sequential = !frame.progressive;
    let refine = frame.progressive && scan.high > 0;
    let kept = scale.kept().len();
    let mut reader = DcReader {
        tables: Vec::with_capacity(scan.components.len()),
        predictors: vec![0; scan.components.len()],
        low: u32::from(scan.low),
        scale,
    };
    for &ci in &scan.components {
        let c = &components[ci];
        let dc = match refine {
            true => None,
            false => Some(
                tables.dc[c.dc_table]
                    .as_ref()
                    .ok_or(DcError("missing DC table"))?,
            ),
        };
        let ac = match sequential {
            true => Some(
                tables.ac[c.ac_table]
                    .as_ref()
                    .ok_or(DcError("missing AC table"))?,
            ),
            false => None,
        };
        reader.tables.push((dc, ac));
    }
    let mut bits = Bits::new(data, start);
    let mut unit = 0usize;
    let restart_due =
        |unit: usize| restart_interval > 0 && unit > 0 && unit.is_multiple_of(restart_interval);
    if scan.components.len() == 1 {
        // Non-interleaved: the component's own blocks in raster order, one per unit, only
        // those that cover the image (ITU T.81 A.2.2).
        let c = &mut components[scan.components[0]];
        let (blocks_x, blocks_y, stride) = own_blocks(frame, c);
        for by in 0..blocks_y {
            for bx in 0..blocks_x {
                if restart_due(unit) {
                    restart(&mut bits)?;
                    reader.predictors[0] = 0;
                }
                unit += 1;
                let at = (by * stride + bx) * kept;
                reader.block(&mut bits, 0, &mut c.coefs[at..at + kept])?;
                if bits.padding > 16 {
                    return Err(DcError("entropy-coded data ends early (truncated file)"));
                }
            }
        }
    } else {
        for my in 0..frame.mcus_y {
            for mx in 0..frame.mcus_x {
                if restart_due(unit) {
                    restart(&mut bits)?;
                    reader.predictors.iter_mut().for_each(|p| *p = 0);
                }
                unit += 1;
                for (k, &ci) in scan.components.iter().enumerate() {
                    let c = &mut components[ci];
                    let stride = frame.mcus_x * c.h;
                    for by in 0..c.v {
                        for bx in 0..c.h {
                            let at = ((my * c.v + by) * stride + mx * c.h + bx) * kept;
                            reader.block(&mut bits, k, &mut c.coefs[at..at + kept])?;
                        }
                    }
                }
                if bits.padding > 16 {
                    return Err(DcError("entropy-coded data ends early (truncated file)"));
                }
            }
        }
    }
    for &ci in &scan.components {
        components[ci].seen = true;
    }
    Ok(bits.pos)
}

/// The per-scan state of [`decode_dc_scan`]: each scan component's tables (no DC table in a
/// refinement scan, an AC table only in a sequential one), DC predictors, the point transform.
struct DcReader<'t> {
    tables: Vec<(Option<&'t Huffman>, Option<&'t Huffman>)>,
    predictors: Vec<i32>,
    low: u32,
    scale: Scale,
}

impl DcReader<'_> {
    /// One block of scan component `k` into its kept coefficients: the DC (a difference, or one
    /// refinement bit), and in a sequential scan the kept AC coefficients, the rest skipped.
    #[inline(always)]
    fn block(&mut self, bits: &mut Bits<'_>, k: usize, kept: &mut [i32]) -> Result<(), DcError> {
        let (dc_table, ac_table) = self.tables[k];
        if let Some(table) = dc_table {
            let size = u32::from(bits.decode(table)?);
            if size > 11 {
                return Err(DcError("corrupt DC coefficient"));
            }
            self.predictors[k] = self.predictors[k].wrapping_add(bits.receive_extend(size));
            kept[0] = self.predictors[k].wrapping_shl(self.low);
        } else {
            if bits.count < 1 {
                bits.refill();
            }
            kept[0] |= (bits.peek(1) as i32) << self.low;
            bits.consume(1);
        }
        if let Some(table) = ac_table {
            let from = if self.scale == Scale::Eighth {
                1
            } else {
                bits.quarter_ac(table, kept)?
            };
            bits.skip_ac(table, from)?;
        }
        Ok(())
    }
}

/// A component's own blocks (those covering the image, what a one-component scan codes) across
/// and down, and the stride of its MCU-padded plane, in blocks.
fn own_blocks(frame: &Frame, c: &Component) -> (usize, usize, usize) {
    (
        (frame.width * c.h).div_ceil(frame.h_max).div_ceil(8),
        (frame.height * c.v).div_ceil(frame.v_max).div_ceil(8),
        frame.mcus_x * c.h,
    )
}

/// The first scan of a progressive AC band (Ah = 0) that holds kept coefficients: one
/// component, its blocks in raster order, end-of-band runs spanning blocks (ITU T.81 G.1.2.2).
/// Every coefficient of the band is decoded (the codes are contiguous), the kept ones stored
/// with the point transform undone, near the middle of the interval the dropped bits leave.
/// Returns the position where its entropy-coded data ends.
#[allow(clippy::too_many_arguments)]
fn decode_ac_first_scan(
    data: &[u8],
    start: usize,
    frame: &Frame,
    c: &mut Component,
    scan: &Scan,
    tables: &ScanTables<'_>,
    restart_interval: usize,
    scale: Scale,
) -> Result<usize, DcError> {
    let table = tables.ac[c.ac_table]
        .as_ref()
        .ok_or(DcError("missing AC table"))?;
    let (first, last) = (u32::from(scan.spectral_start), u32::from(scan.spectral_end));
    let low = u32::from(scan.low);
    let middle = ((1i32 << low) - 1) / 2;
    let kept = scale.kept();
    let (blocks_x, blocks_y, stride) = own_blocks(frame, c);
    let mut bits = Bits::new(data, start);
    let mut end_of_band_run = 0u32;
    let mut unit = 0usize;
    for by in 0..blocks_y {
        for bx in 0..blocks_x {
            if restart_interval > 0 && unit > 0 && unit.is_multiple_of(restart_interval) {
                restart(&mut bits)?;
                end_of_band_run = 0;
            }
            unit += 1;
            if end_of_band_run > 0 {
                end_of_band_run -= 1;
                continue;
            }
            let at = (by * stride + bx) * kept.len();
            let block = &mut c.coefs[at..at + kept.len()];
            let mut k = first;
            while k <= last {
                let symbol = bits.decode(table)?;
                let (run, size) = (u32::from(symbol >> 4), u32::from(symbol & 15));
                if size == 0 {
                    if run == 15 {
                        k += 16;
                        continue;
                    }
                    // This block and 2^run - 1 + (run more bits) after it end here.
                    end_of_band_run = (1 << run) - 1 + bits.receive(run);
                    break;
                }
                k += run;
                if k > last {
                    return Err(DcError("AC coefficients overrun the band"));
                }
                let value = bits.receive_extend(size);
                if let Some(slot) = scale.slot(k) {
                    block[slot] = value.wrapping_shl(low) + value.signum() * middle;
                }
                k += 1;
            }
            if bits.padding > 16 {
                return Err(DcError("entropy-coded data ends early (truncated file)"));
            }
        }
    }
    Ok(bits.pos)
}

/// The start of the next marker at or after `pos` (not a stuffed 0xFF00, not a restart
/// marker), or `None` when the data ends first. A memchr scan: AC scans are skipped at memory
/// speed.
fn next_marker(data: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        pos += memchr::memchr(0xFF, data.get(pos..)?)?;
        match data.get(pos + 1)? {
            0x00 | 0xD0..=0xD7 => pos += 2,
            0xFF => pos += 1, // fill byte before a marker
            _ => return Some(pos),
        }
    }
}

/// Weights of the 1/4-scale inverse DCT, 16.16 fixed point. A quadrant's mean of the 8x8 IDCT
/// `f(x, y) = 1/4 sum C(u) C(v) F(v, u) cos((2x+1)u pi/16) cos((2y+1)v pi/16)` (T.81 A.3.3)
/// takes, per frequency, the mean of its cosine over four pixels. For u = 1 that is
/// `(cos(pi/16) + cos(3pi/16) + cos(5pi/16) + cos(7pi/16)) / 4 = 0.640729` on the first half and
/// its negative on the second; for u = 0 it is 1 with C(0) = 1/sqrt(2).
const QUARTER_DC: i64 = 8192; // 1/8
const QUARTER_FIRST: i64 = 7423; // 1/4 * 1/sqrt(2) * 0.640729 = 0.113266
const QUARTER_BOTH: i64 = 6726; // 1/4 * 0.640729^2 = 0.102633

/// One component's samples at the output scale: each block's kept coefficients dequantised and
/// inverse-transformed to 1x1 or 2x2 samples, the plane padded to whole MCUs.
fn component_plane(frame: &Frame, c: &Component, quant: &[u16; 64], scale: Scale) -> Vec<u8> {
    let clamp = |v: i64| v.clamp(0, 255) as u8;
    match scale {
        // jpeg-decoder's 1x1 IDCT exactly: (DC * q) / 8 + 128, rounded.
        Scale::Eighth => {
            let q = i64::from(quant[0]);
            c.coefs
                .iter()
                .map(|&dc| clamp((i64::from(dc) * q + 1028) >> 3))
                .collect()
        }
        Scale::Quarter => {
            let stride = frame.mcus_x * c.h;
            let rows = c.coefs.len() / 4 / stride;
            let q: Vec<i64> = Scale::Quarter
                .kept()
                .iter()
                .map(|&z| i64::from(quant[z as usize]))
                .collect();
            let mut plane = vec![0u8; stride * 2 * rows * 2];
            for (b, block) in c.coefs.chunks_exact(4).enumerate() {
                let (by, bx) = (b / stride, b % stride);
                let [dc, right, down, both] = [0, 1, 2, 3].map(|i| i64::from(block[i]) * q[i]);
                let base = dc * QUARTER_DC + (128 << 16) + (1 << 15);
                let across = right * QUARTER_FIRST;
                let vertical = down * QUARTER_FIRST;
                let diagonal = both * QUARTER_BOTH;
                let top = (by * 2) * stride * 2 + bx * 2;
                let bottom = top + stride * 2;
                plane[top] = clamp((base + across + vertical + diagonal) >> 16);
                plane[top + 1] = clamp((base - across + vertical - diagonal) >> 16);
                plane[bottom] = clamp((base + across - vertical - diagonal) >> 16);
                plane[bottom + 1] = clamp((base - across - vertical + diagonal) >> 16);
            }
            plane
        }
    }
}

/// Output at 1/8 or 1/4 scale: one or 2x2 pixels per luma block, cropped to the image, each
/// component's samples converted to gray, RGB or CMYK inks.
fn assemble(
    frame: &Frame,
    components: &[Component],
    quant: &[[u16; 64]; 4],
    scale: Scale,
    adobe_transform: Option<u8>,
    orientation: Orientation,
) -> DcImage {
    let denominator = scale.denominator() as usize;
    let (out_w, out_h) = (
        frame.width.div_ceil(denominator),
        frame.height.div_ceil(denominator),
    );
    let samples: Vec<Vec<u8>> = components
        .iter()
        .map(|c| component_plane(frame, c, &quant[c.quant], scale))
        .collect();
    // Sampling factors are powers of two, so a component's sample for output pixel (x, y) is at
    // (x >> sx, y >> sy): a shift, not a division, in the per-pixel loop.
    let shift = |factor: usize, max: usize| (max / factor).trailing_zeros();
    let strides: Vec<usize> = components
        .iter()
        .map(|c| frame.mcus_x * c.h * scale.per_block())
        .collect();
    let sx: Vec<u32> = components.iter().map(|c| shift(c.h, frame.h_max)).collect();
    let sy: Vec<u32> = components.iter().map(|c| shift(c.v, frame.v_max)).collect();
    let row = |c: usize, y: usize| {
        let start = (y >> sy[c]) * strides[c];
        &samples[c][start..start + strides[c]]
    };
    let colour = match components.len() {
        1 => Colour::Gray,
        3 => Colour::Rgb,
        _ => Colour::Cmyk,
    };
    let mut pixels = vec![0u8; out_w * out_h * colour.channels()];
    let channels = colour.channels();
    for (y, out_row) in pixels.chunks_exact_mut(out_w * channels).enumerate() {
        match components.len() {
            1 => out_row.copy_from_slice(&row(0, y)[..out_w]),
            3 => {
                let (luma_row, cb_row, cr_row) = (row(0, y), row(1, y), row(2, y));
                for (x, out) in out_row.chunks_exact_mut(3).enumerate() {
                    let (r, g, b) =
                        ycbcr_to_rgb(luma_row[x >> sx[0]], cb_row[x >> sx[1]], cr_row[x >> sx[2]]);
                    out.copy_from_slice(&[r, g, b]);
                }
            }
            _ => {
                let rows = [row(0, y), row(1, y), row(2, y), row(3, y)];
                for (x, out) in out_row.chunks_exact_mut(4).enumerate() {
                    let s = |c: usize| rows[c][x >> sx[c]];
                    // Inks as jpeg-decoder hands them out: Adobe stores CMYK inverted; YCCK is
                    // YCbCr-coded (inverted) CMY plus inverted K.
                    let inks = if adobe_transform == Some(2) {
                        let (r, g, b) = ycbcr_to_rgb(s(0), s(1), s(2));
                        [r, g, b, 255 - s(3)]
                    } else {
                        [255 - s(0), 255 - s(1), 255 - s(2), 255 - s(3)]
                    };
                    out.copy_from_slice(&inks);
                }
            }
        }
    }
    DcImage {
        width: out_w as u32,
        height: out_h as u32,
        colour,
        pixels,
        orientation,
    }
}

/// JFIF YCbCr -> RGB in 16.16 fixed point.
#[inline(always)]
fn ycbcr_to_rgb(y: u8, cb: u8, cr: u8) -> (u8, u8, u8) {
    let luma = i32::from(y) << 16;
    let (cb, cr) = (i32::from(cb) - 128, i32::from(cr) - 128);
    (
        ((luma + 91_881 * cr + 32_768) >> 16).clamp(0, 255) as u8,
        ((luma - 22_554 * cb - 46_802 * cr + 32_768) >> 16).clamp(0, 255) as u8,
        ((luma + 116_130 * cb + 32_768) >> 16).clamp(0, 255) as u8,
    )
}

/// Drops the partial byte and consumes the RSTn marker that must follow. Refills never read
/// past a marker, so it lies at or after the read position.
fn restart(bits: &mut Bits<'_>) -> Result<(), DcError> {
    let data = bits.data;
    let mut pos = bits.pos;
    while pos + 1 < data.len() && !(data[pos] == 0xFF && (0xD0..=0xD7).contains(&data[pos + 1])) {
        pos += 1;
    }
    if pos + 1 >= data.len() {
        return Err(DcError("missing restart marker"));
    }
    *bits = Bits::new(data, pos + 2);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A photo-like test image: smooth gradients plus texture.
    fn photo(width: u16, height: u16) -> Vec<u8> {
        let mut rgb = Vec::with_capacity(usize::from(width) * usize::from(height) * 3);
        for y in 0..u32::from(height) {
            for x in 0..u32::from(width) {
                let noise = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) % 23;
                rgb.push(((x * 255 / u32::from(width)) + noise).min(255) as u8);
                rgb.push(((y * 255 / u32::from(height)) + noise).min(255) as u8);
                rgb.push((((x + y) * 127 / u32::from(width + height)) + 60 + noise).min(255) as u8);
            }
        }
        rgb
    }

    fn encode(
        width: u16,
        height: u16,
        configure: impl FnOnce(&mut jpeg_encoder::Encoder<&mut Vec<u8>>),
    ) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = jpeg_encoder::Encoder::new(&mut out, 90);
        configure(&mut encoder);
        encoder
            .encode(
                &photo(width, height),
                width,
                height,
                jpeg_encoder::ColorType::Rgb,
            )
            .unwrap();
        out
    }

    const SCALES: [Scale; 2] = [Scale::Eighth, Scale::Quarter];

    /// jpeg-decoder's own decode at `scale` (its 2x2 IDCT weighs the four lowest coefficients
    /// 1/8 each, ours by the quadrant means, 0.113 and 0.103), the reference.
    fn reference(bytes: &[u8], scale: Scale) -> (u16, u16, Vec<u8>) {
        let mut decoder = jpeg_decoder::Decoder::new(bytes);
        decoder.read_info().unwrap();
        let info = decoder.info().unwrap();
        let d = scale.denominator() as u16;
        let (w, h) = decoder
            .scale(info.width.div_ceil(d), info.height.div_ceil(d))
            .unwrap();
        (w, h, decoder.decode().unwrap())
    }

    fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| f64::from(x.abs_diff(*y)))
            .sum::<f64>()
            / a.len() as f64
    }

    #[test]
    fn matches_the_reference_decoder_at_one_eighth_and_one_quarter_scale() {
        for (name, bytes) in [
            ("4:2:0", encode(803, 611, |_| {})),
            (
                "4:4:4",
                encode(640, 480, |e| {
                    e.set_sampling_factor(jpeg_encoder::SamplingFactor::F_1_1)
                }),
            ),
            (
                "4:2:2",
                encode(640, 480, |e| {
                    e.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_1)
                }),
            ),
            ("restarts", encode(640, 480, |e| e.set_restart_interval(3))),
            (
                "one scan per component",
                encode(320, 240, |e| e.set_optimized_huffman_tables(true)),
            ),
            (
                "progressive, spectral selection",
                encode(803, 611, |e| e.set_progressive(true)),
            ),
            (
                "progressive with restarts",
                encode(640, 480, |e| {
                    e.set_progressive(true);
                    e.set_restart_interval(5)
                }),
            ),
            ("cjpeg baseline", fixture("baseline.jpg")),
            ("cjpeg progressive", fixture("progressive.jpg")),
            (
                "cjpeg progressive, restarts",
                fixture("progressive-restarts.jpg"),
            ),
            ("cjpeg 4:4:0", fixture("sampling-440.jpg")),
            ("cjpeg progressive 4:4:0", fixture("progressive-440.jpg")),
            ("cjpeg 4:1:1", fixture("sampling-411.jpg")),
        ] {
            for scale in SCALES {
                let image = decode(&bytes, scale)
                    .unwrap()
                    .unwrap_or_else(|| panic!("{name} {scale:?}: not handled"));
                let (w, h, expected) = reference(&bytes, scale);
                assert_eq!(
                    (image.width, image.height),
                    (u32::from(w), u32::from(h)),
                    "{name} {scale:?}"
                );
                assert_eq!(image.colour, Colour::Rgb, "{name}");
                let diff = mean_abs_diff(&image.pixels, &expected);
                // Chroma upsampling differs (replication vs. the reference's filter); at 1/8 luma
                // is exact. cjpeg's fixtures are small (26x17 at 1/8), so edges weigh more.
                let bound = if name.starts_with("cjpeg") { 4.0 } else { 3.0 };
                assert!(diff < bound, "{name} {scale:?}: mean abs diff {diff}");
            }
        }
    }

    /// A progressive file's kept AC coefficients have its first AC scan's precision (the
    /// refinement scans are skipped): close to, not equal to, the same picture coded
    /// sequentially, and far closer than the 1/8-scale image upsampled.
    #[test]
    fn progressive_at_one_quarter_scale_is_close_to_sequential() {
        let baseline = decode(&fixture("baseline.jpg"), Scale::Quarter)
            .unwrap()
            .unwrap();
        let eighth = decode(&fixture("baseline.jpg"), Scale::Eighth)
            .unwrap()
            .unwrap();
        let doubled: Vec<u8> = (0..baseline.height as usize)
            .flat_map(|y| {
                let row = &eighth.pixels[(y / 2) * eighth.width as usize * 3..];
                (0..baseline.width as usize)
                    .flat_map(move |x| row[(x / 2) * 3..(x / 2) * 3 + 3].to_vec())
            })
            .collect();
        let upsampled = mean_abs_diff(&doubled, &baseline.pixels);
        for name in ["progressive.jpg", "progressive-restarts.jpg"] {
            let progressive = decode(&fixture(name), Scale::Quarter).unwrap().unwrap();
            let diff = mean_abs_diff(&progressive.pixels, &baseline.pixels);
            assert!(diff < upsampled / 3.0, "{name}: {diff} vs {upsampled}");
        }
    }

    /// What libjpeg-turbo writes (tests/fixtures/make_fixtures.sh): successive approximation,
    /// interleaved progressive DC, sampling the Rust encoder cannot produce.
    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures")
                .join(name),
        )
        .unwrap()
    }

    /// CMYK ink amounts for the encoder: a photo's complement with grey component replacement.
    fn cmyk(width: u16, height: u16) -> Vec<u8> {
        photo(width, height)
            .chunks_exact(3)
            .flat_map(|p| {
                let k = 255 - p.iter().copied().max().unwrap();
                [255 - p[0] - k, 255 - p[1] - k, 255 - p[2] - k, k]
            })
            .collect()
    }

    /// The same picture and quantisation, coded progressively (successive approximation: a
    /// first DC scan at half precision, then one refinement bit a block) and sequentially: the
    /// DC coefficients, so the 1/8-scale images, are identical.
    #[test]
    fn progressive_dc_refinement_is_exact() {
        let baseline = decode(&fixture("baseline.jpg"), Scale::Eighth)
            .unwrap()
            .unwrap();
        for name in ["progressive.jpg", "progressive-restarts.jpg"] {
            let progressive = decode(&fixture(name), Scale::Eighth).unwrap().unwrap();
            assert_eq!(progressive.pixels, baseline.pixels, "{name}");
        }
    }

    #[test]
    fn cmyk_and_ycck_come_out_as_the_reference_decoders_inks() {
        let (w, h) = (480u16, 320u16);
        for (name, colour, progressive) in [
            ("CMYK", jpeg_encoder::ColorType::Cmyk, false),
            ("YCCK", jpeg_encoder::ColorType::CmykAsYcck, false),
            ("progressive CMYK", jpeg_encoder::ColorType::Cmyk, true),
            (
                "progressive YCCK",
                jpeg_encoder::ColorType::CmykAsYcck,
                true,
            ),
        ] {
            let mut bytes = Vec::new();
            let mut encoder = jpeg_encoder::Encoder::new(&mut bytes, 90);
            encoder.set_progressive(progressive);
            encoder.encode(&cmyk(w, h), w, h, colour).unwrap();
            for scale in SCALES {
                let image = decode(&bytes, scale)
                    .unwrap_or_else(|e| panic!("{name}: {e}"))
                    .unwrap_or_else(|| panic!("{name}: not handled"));
                assert_eq!(image.colour, Colour::Cmyk, "{name}");
                let (rw, rh, expected) = reference(&bytes, scale);
                assert_eq!((image.width, image.height), (u32::from(rw), u32::from(rh)));
                let diff = mean_abs_diff(&image.pixels, &expected);
                assert!(diff < 3.0, "{name} {scale:?}: mean abs diff {diff}");
            }
        }
    }

    #[test]
    fn progressive_gray() {
        let gray = fixture("progressive-gray.jpg");
        let image = decode(&gray, Scale::Eighth).unwrap().unwrap();
        assert_eq!(image.colour, Colour::Gray);
        let (_, _, expected) = reference(&gray, Scale::Eighth);
        assert!(mean_abs_diff(&image.pixels, &expected) < 1.0);
    }

    /// Noise at high quality codes coefficient 63 in most blocks, so they have no end-of-block
    /// symbol; the next block's first bits must not be read as one (a fixed bug).
    #[test]
    fn blocks_without_an_end_of_block_symbol() {
        let (w, h) = (480u16, 320u16);
        let mut state: u32 = 12_345;
        let noise: Vec<u8> = (0..usize::from(w) * usize::from(h) * 3)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 24) as u8
            })
            .collect();
        for quality in [50u8, 90, 100] {
            let mut bytes = Vec::new();
            let mut encoder = jpeg_encoder::Encoder::new(&mut bytes, quality);
            encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_1_1);
            encoder
                .encode(&noise, w, h, jpeg_encoder::ColorType::Rgb)
                .unwrap();
            for scale in SCALES {
                let image = decode(&bytes, scale)
                    .unwrap_or_else(|e| panic!("q{quality} {scale:?}: {e}"))
                    .unwrap();
                let (_, _, expected) = reference(&bytes, scale);
                let diff = mean_abs_diff(&image.pixels, &expected);
                // Noise is all high frequencies: at 1/4 the two IDCTs' weights differ most.
                assert!(diff < 4.0, "q{quality} {scale:?}: mean abs diff {diff}");
            }
        }
    }

    /// Inputs the fuzzer found (tests/fixtures/fuzz/): each an error, never a panic.
    #[test]
    fn what_the_fuzzer_found_is_an_error() {
        // Three one-bit codes cannot exist; filling the lookup for them overran it.
        let mut counts = [0u8; 16];
        counts[0] = 3;
        assert!(Huffman::new(&counts, vec![0, 1, 2], false).is_err());
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            for scale in SCALES {
                assert!(decode(&bytes, scale).is_err(), "{}", path.display());
            }
        }
    }

    #[test]
    fn grayscale_is_exact() {
        let rgb = photo(400, 300);
        let gray: Vec<u8> = rgb.chunks(3).map(|p| p[1]).collect();
        let mut bytes = Vec::new();
        jpeg_encoder::Encoder::new(&mut bytes, 85)
            .encode(&gray, 400, 300, jpeg_encoder::ColorType::Luma)
            .unwrap();
        for scale in SCALES {
            let image = decode(&bytes, scale).unwrap().unwrap();
            assert_eq!(image.colour, Colour::Gray);
            let (_, _, expected) = reference(&bytes, scale);
            let diff = mean_abs_diff(&image.pixels, &expected);
            assert!(diff < 1.0, "{scale:?}: {diff}");
        }
    }

    #[test]
    fn unsupported_and_broken_inputs() {
        assert!(decode(b"not a jpeg", Scale::Eighth).unwrap().is_none());
        for name in ["progressive.jpg", "progressive-restarts.jpg"] {
            let progressive = fixture(name);
            for cut in [progressive.len() / 3, progressive.len() - 10] {
                assert!(
                    decode(&progressive[..cut], Scale::Eighth).is_err(),
                    "{name} cut at {cut}: truncated progressive data is an error"
                );
            }
        }
        let whole = encode(800, 600, |_| {});
        assert!(
            decode(&whole[..whole.len() / 3], Scale::Eighth).is_err(),
            "truncated data is an error, not a grey image"
        );
        assert!(decode(&whole[..300], Scale::Eighth).is_err());
        assert_eq!(
            header(&whole).map(|h| (h.width, h.height)),
            Some((800, 600))
        );
    }
}
