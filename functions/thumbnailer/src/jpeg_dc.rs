//! Baseline JPEG decoded at 1/8 scale from DC coefficients only.
//!
//! At 1/8 scale each 8x8 block becomes one pixel whose value is the block's dequantised DC
//! coefficient / 8 + 128 (the 1x1 inverse DCT, what libjpeg's `scale_denom = 8` and sharp's
//! shrink-on-load compute). AC coefficients still have to be entropy-decoded to find where the
//! next block starts, but their values are never needed: each is skipped with one table lookup
//! and one shift (code length + magnitude bits). That is where the time goes, and why this beats
//! a general decoder's scaled path.
//!
//! Handles baseline/extended sequential Huffman JPEGs (SOF0/SOF1), 8-bit, one interleaved scan,
//! grayscale or YCbCr with any 1-2 sampling factors, restart intervals. Anything else (progressive,
//! arithmetic, CMYK, Adobe RGB, several scans) returns `Ok(None)` for jpeg-decoder.

use image::metadata::Orientation;

/// A decoded 1/8-scale image: RGB (3 bytes a pixel) or gray, and the EXIF orientation.
pub struct DcImage {
    pub width: u32,
    pub height: u32,
    pub gray: bool,
    pub pixels: Vec<u8>,
    pub orientation: Orientation,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct DcError(pub &'static str);

/// Frame dimensions without decoding anything, for the caller's limits and scale choice.
pub fn dimensions(data: &[u8]) -> Option<(u32, u32)> {
    let mut pos = 2;
    while pos + 4 <= data.len() {
        if data[pos] != 0xFF {
            return None;
        }
        let marker = data[pos + 1];
        let len = usize::from(u16::from_be_bytes([data[pos + 2], data[pos + 3]]));
        if matches!(marker, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF) {
            let seg = data.get(pos + 4..pos + 2 + len)?;
            return Some((
                u32::from(u16::from_be_bytes([seg[3], seg[4]])),
                u32::from(u16::from_be_bytes([seg[1], seg[2]])),
            ));
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
    /// magnitude bits fit too, `SKIP | total << 8 | run` so a skipped coefficient costs one
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
            val_offset[len] = k as i32 - code;
            for _ in 0..n {
                let symbol = *values.get(k).ok_or(DcError("bad Huffman table"))?;
                if len as u32 <= LUT_BITS {
                    let shift = LUT_BITS - len as u32;
                    let magnitude = u32::from(symbol & 15);
                    let mut entry = SHORT | ((len as u16) << 8) | u16::from(symbol);
                    if ac && len as u32 + magnitude <= LUT_BITS && symbol != 0x00 && symbol != 0xF0
                    {
                        entry = SKIP
                            | (((len as u32 + magnitude) as u16) << 8)
                            | u16::from(symbol >> 4);
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
                advanced += u32::from(entry & 0x0F) + 1;
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

    #[inline(always)]
    fn receive_extend(&mut self, size: u32) -> i32 {
        if size == 0 {
            return 0;
        }
        if self.count < size {
            self.refill();
        }
        let value = self.peek(size) as i32;
        self.consume(size);
        if value < 1 << (size - 1) {
            value - (1 << size) + 1
        } else {
            value
        }
    }

    /// Skips the 63 AC coefficients of one block. The hot loop of the whole decoder: the bit
    /// buffer stays in registers and the common case is one lookup and one shift.
    #[inline(always)]
    fn skip_ac(&mut self, table: &Huffman) -> Result<(), DcError> {
        let lut: &[u16; 1 << LUT_BITS] = &table.lut;
        let (mut bits, mut count) = (self.bits, self.count);
        let mut k = 1u32;
        while k < 64 {
            if count < 26 {
                (self.bits, self.count) = (bits, count);
                self.refill();
                (bits, count) = (self.bits, self.count);
            }
            let window = (bits >> (64 - LUT_BITS)) as usize;
            let many = table.multi[window];
            if many != 0 && k + u32::from((many >> 5) & 0x7F) <= 64 {
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
                k += u32::from(entry & 0x0F) + 1;
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
}

/// Decodes `data` at 1/8 scale, or `Ok(None)` when it is not a JPEG this path handles.
pub fn decode(data: &[u8]) -> Result<Option<DcImage>, DcError> {
    if data.len() < 4 || data[0] != 0xFF || data[1] != 0xD8 {
        return Ok(None);
    }
    let mut quant_dc = [0i32; 4];
    let mut dc_tables: [Option<Huffman>; 4] = Default::default();
    let mut ac_tables: [Option<Huffman>; 4] = Default::default();
    let mut components: Vec<Component> = Vec::new();
    let (mut width, mut height) = (0usize, 0usize);
    let mut restart_interval = 0usize;
    let mut orientation = Orientation::NoTransforms;
    let mut adobe_transform: Option<u8> = None;
    let mut pos = 2;
    loop {
        while data.get(pos) == Some(&0xFF) && data.get(pos + 1) == Some(&0xFF) {
            pos += 1; // fill bytes
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
            0xDB => {
                let mut i = 0;
                while i < seg.len() {
                    let (precision, id) = (seg[i] >> 4, usize::from(seg[i] & 15));
                    let size = if precision == 0 { 64 } else { 128 };
                    let table = seg
                        .get(i + 1..i + 1 + size)
                        .ok_or(DcError("truncated DQT"))?;
                    if id < 4 {
                        quant_dc[id] = if precision == 0 {
                            i32::from(table[0])
                        } else {
                            i32::from(u16::from_be_bytes([table[0], table[1]]))
                        };
                    }
                    i += 1 + size;
                }
            }
            0xC4 => {
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
            }
            0xC0 | 0xC1 => {
                if seg.len() < 6 || seg[0] != 8 {
                    return Ok(None);
                }
                height = usize::from(u16::from_be_bytes([seg[1], seg[2]]));
                width = usize::from(u16::from_be_bytes([seg[3], seg[4]]));
                let n = usize::from(seg[5]);
                if !(n == 1 || n == 3) || seg.len() < 6 + 3 * n || width == 0 || height == 0 {
                    return Ok(None);
                }
                for c in 0..n {
                    let s = &seg[6 + 3 * c..9 + 3 * c];
                    let (h, v) = (usize::from(s[1] >> 4), usize::from(s[1] & 15));
                    if !(1..=2).contains(&h) || !(1..=2).contains(&v) || s[2] >= 4 {
                        return Ok(None);
                    }
                    components.push(Component {
                        id: s[0],
                        h,
                        v,
                        quant: usize::from(s[2]),
                        dc_table: 0,
                        ac_table: 0,
                    });
                }
            }
            // Progressive, lossless, hierarchical and arithmetic frames: the general decoder.
            0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return Ok(None),
            0xDD => restart_interval = usize::from(u16::from_be_bytes([seg[0], seg[1]])),
            0xDA => {
                if components.is_empty() || (components.len() == 3 && adobe_transform == Some(0)) {
                    return Ok(None);
                }
                let n = usize::from(seg[0]);
                if n != components.len() {
                    return Ok(None); // non-interleaved scans
                }
                for i in 0..n {
                    let (id, tables) = (seg[1 + 2 * i], seg[2 + 2 * i]);
                    let c = components
                        .iter_mut()
                        .find(|c| c.id == id)
                        .ok_or(DcError("scan names an unknown component"))?;
                    c.dc_table = usize::from(tables >> 4) & 3;
                    c.ac_table = usize::from(tables & 15) & 3;
                }
                let start = pos + 2 + len;
                return decode_scan(
                    data,
                    start,
                    &components,
                    &quant_dc,
                    &dc_tables,
                    &ac_tables,
                    width,
                    height,
                    restart_interval,
                    orientation,
                );
            }
            0xD9 => return Err(DcError("no scan before the end of image")),
            _ => {}
        }
        pos += 2 + len;
    }
}

#[allow(clippy::too_many_arguments)]
fn decode_scan(
    data: &[u8],
    start: usize,
    components: &[Component],
    quant_dc: &[i32; 4],
    dc_tables: &[Option<Huffman>; 4],
    ac_tables: &[Option<Huffman>; 4],
    width: usize,
    height: usize,
    restart_interval: usize,
    orientation: Orientation,
) -> Result<Option<DcImage>, DcError> {
    let h_max = components.iter().map(|c| c.h).max().unwrap_or(1);
    let v_max = components.iter().map(|c| c.v).max().unwrap_or(1);
    // A single-component scan has one block per MCU, whatever its sampling factors.
    let (mcu_w, mcu_h) = if components.len() == 1 {
        (8, 8)
    } else {
        (8 * h_max, 8 * v_max)
    };
    let (mcus_x, mcus_y) = (width.div_ceil(mcu_w), height.div_ceil(mcu_h));
    let layout: Vec<(usize, usize)> = components
        .iter()
        .map(|c| {
            if components.len() == 1 {
                (1, 1)
            } else {
                (c.h, c.v)
            }
        })
        .collect();
    let mut planes: Vec<Vec<u8>> = layout
        .iter()
        .map(|(h, v)| vec![0u8; mcus_x * h * mcus_y * v])
        .collect();
    let mut tables = Vec::with_capacity(components.len());
    for c in components {
        let dc = dc_tables[c.dc_table]
            .as_ref()
            .ok_or(DcError("missing DC table"))?;
        let ac = ac_tables[c.ac_table]
            .as_ref()
            .ok_or(DcError("missing AC table"))?;
        tables.push((dc, ac, quant_dc[c.quant]));
    }
    let mut bits = Bits::new(data, start);
    let mut predictors = vec![0i32; components.len()];
    let mut mcu_index = 0usize;
    for my in 0..mcus_y {
        for mx in 0..mcus_x {
            if restart_interval > 0 && mcu_index > 0 && mcu_index.is_multiple_of(restart_interval) {
                restart(&mut bits)?;
                predictors.iter_mut().for_each(|p| *p = 0);
            }
            mcu_index += 1;
            for (ci, &(h, v)) in layout.iter().enumerate() {
                let (dc, ac, q) = tables[ci];
                let stride = mcus_x * h;
                for by in 0..v {
                    for bx in 0..h {
                        let size = u32::from(bits.decode(dc)?);
                        if size > 11 {
                            return Err(DcError("corrupt DC coefficient"));
                        }
                        predictors[ci] += bits.receive_extend(size);
                        bits.skip_ac(ac)?;
                        let value = (predictors[ci] * q + 1024 + 4) >> 3;
                        planes[ci][(my * v + by) * stride + mx * h + bx] =
                            value.clamp(0, 255) as u8;
                    }
                }
            }
            if bits.padding > 16 {
                return Err(DcError("entropy-coded data ends early (truncated file)"));
            }
        }
    }
    // Output at 1/8 scale: one pixel per luma block, cropped to the image.
    let (out_w, out_h) = (width.div_ceil(8), height.div_ceil(8));
    let mut pixels;
    let gray = components.len() == 1;
    if gray {
        let stride = mcus_x * layout[0].0;
        pixels = Vec::with_capacity(out_w * out_h);
        for y in 0..out_h {
            pixels.extend_from_slice(&planes[0][y * stride..y * stride + out_w]);
        }
    } else {
        pixels = vec![0u8; out_w * out_h * 3];
        // Sampling factors are 1 or 2, so a component's block for output pixel (x, y) is at
        // (x >> sx, y >> sy): a shift, not a division, in the per-pixel loop.
        let shift = |factor: usize, max: usize| u32::from(factor < max);
        let strides: Vec<usize> = layout.iter().map(|(h, _)| mcus_x * h).collect();
        let sx: Vec<u32> = layout.iter().map(|&(h, _)| shift(h, h_max)).collect();
        let sy: Vec<u32> = layout.iter().map(|&(_, v)| shift(v, v_max)).collect();
        for (y, out_row) in pixels.chunks_exact_mut(out_w * 3).enumerate() {
            let row = |c: usize| {
                let start = (y >> sy[c]) * strides[c];
                &planes[c][start..start + strides[c]]
            };
            let (luma_row, cb_row, cr_row) = (row(0), row(1), row(2));
            for (x, out) in out_row.chunks_exact_mut(3).enumerate() {
                let luma = i32::from(luma_row[x >> sx[0]]) << 16;
                let cb = i32::from(cb_row[x >> sx[1]]) - 128;
                let cr = i32::from(cr_row[x >> sx[2]]) - 128;
                // JFIF YCbCr -> RGB in 16.16 fixed point.
                out[0] = ((luma + 91_881 * cr + 32_768) >> 16).clamp(0, 255) as u8;
                out[1] = ((luma - 22_554 * cb - 46_802 * cr + 32_768) >> 16).clamp(0, 255) as u8;
                out[2] = ((luma + 116_130 * cb + 32_768) >> 16).clamp(0, 255) as u8;
            }
        }
    }
    Ok(Some(DcImage {
        width: out_w as u32,
        height: out_h as u32,
        gray,
        pixels,
        orientation,
    }))
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

    /// jpeg-decoder's own 1/8-scaled decode, the reference.
    fn reference(bytes: &[u8]) -> (u16, u16, Vec<u8>) {
        let mut decoder = jpeg_decoder::Decoder::new(bytes);
        decoder.read_info().unwrap();
        let info = decoder.info().unwrap();
        let (w, h) = decoder
            .scale(info.width.div_ceil(8), info.height.div_ceil(8))
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
    fn matches_the_reference_decoder_at_one_eighth_scale() {
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
        ] {
            let image = decode(&bytes)
                .unwrap()
                .unwrap_or_else(|| panic!("{name}: not handled"));
            let (w, h, expected) = reference(&bytes);
            assert_eq!(
                (image.width, image.height),
                (u32::from(w), u32::from(h)),
                "{name}"
            );
            assert!(!image.gray);
            let diff = mean_abs_diff(&image.pixels, &expected);
            // Chroma upsampling differs (replication vs. the reference's filter); luma is exact.
            assert!(diff < 3.0, "{name}: mean abs diff {diff}");
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
        let image = decode(&bytes).unwrap().unwrap();
        assert!(image.gray);
        let (_, _, expected) = reference(&bytes);
        assert!(mean_abs_diff(&image.pixels, &expected) < 1.0);
    }

    #[test]
    fn unsupported_and_broken_inputs() {
        // This encoder writes one scan per component when it optimises its tables.
        let separate_scans = encode(320, 240, |e| e.set_optimized_huffman_tables(true));
        assert!(
            decode(&separate_scans).unwrap().is_none(),
            "non-interleaved scans go to the general decoder"
        );
        let progressive = encode(320, 240, |e| e.set_progressive(true));
        assert!(
            decode(&progressive).unwrap().is_none(),
            "progressive goes to the general decoder"
        );
        assert!(decode(b"not a jpeg").unwrap().is_none());
        let whole = encode(800, 600, |_| {});
        assert!(
            decode(&whole[..whole.len() / 3]).is_err(),
            "truncated data is an error, not a grey image"
        );
        assert!(decode(&whole[..300]).is_err());
        assert_eq!(dimensions(&whole), Some((800, 600)));
    }
}
