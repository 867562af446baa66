#!/usr/bin/env python3
"""The thumbnail benchmark's corpus: every kind of input the thumbnailer accepts, generated
deterministically from one real photograph (the shared corpus's 24 MP JPEG, or $BENCH_SOURCE).

    python make_corpus.py OUT_DIR [--small]

Kinds: baseline JPEG at 4:4:4, 4:2:2, 4:2:0, 4:4:0 and 4:1:1 (the last two by cjpeg, from
Debian's libjpeg-turbo-progs: Pillow cannot write them), progressive, restart intervals, gray,
CMYK, EXIF-rotated (orientation 6: stored sideways), at 2 (1920x1080), 12, 24 and 48 MP, and
baseline and progressive at 1 MP (1280x720, the other common video and messaging size); PNG
8-bit and 16-bit RGBA; WebP; GIF. --small writes the same kinds at about 0.1 MP (the fuzzer's
seeds; without the photo they come from a synthetic image). The same source and tool versions
give the same bytes; nothing large is committed.
"""
import io
import os
import struct
import subprocess
import sys
import tempfile
import zlib

from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("BENCH_SOURCE", os.path.join(HERE, "..", "..", "shared", "bench-corpus", "p24mp_6000x4000.jpg"))

SIZES = {"1mp": (1280, 720), "2mp": (1920, 1080), "12mp": (4000, 3000), "24mp": (6000, 4000),
         "48mp": (8000, 6000)}
SMALL = {"1mp": (256, 144), "2mp": (384, 216), "12mp": (400, 300), "24mp": (480, 320),
         "48mp": (560, 420)}


def photo(source, size):
    """The source resized (Lanczos) and centre-cropped to `size`."""
    w, h = size
    sw, sh = source.size
    scale = max(w / sw, h / sh)
    big = source.resize((max(w, round(sw * scale)), max(h, round(sh * scale))), Image.Resampling.LANCZOS)
    left, top = (big.width - w) // 2, (big.height - h) // 2
    return big.crop((left, top, left + w, top + h))


def synthetic(size):
    """A photo-like stand-in (gradients and a deterministic texture) when no photo is at hand."""
    w, h = size
    data = bytearray()
    for y in range(h):
        for x in range(w):
            noise = (x * 2654435761 ^ y * 40503) % 23
            data += bytes((min(255, x * 255 // w + noise), min(255, y * 255 // h + noise),
                           min(255, (x + y) * 127 // (w + h) + 60 + noise)))
    return Image.frombytes("RGB", size, bytes(data))


def cjpeg(image, path, *args):
    with tempfile.NamedTemporaryFile(suffix=".ppm") as ppm:
        image.save(ppm.name, "PPM")
        with open(path, "wb") as out:
            subprocess.run(["cjpeg", "-quality", "90", *args, ppm.name], stdout=out, check=True)


def png16(image, alpha, path):
    """A 16-bit RGBA PNG written chunk by chunk (Pillow writes 16 bits for gray only): each
    8-bit sample v becomes v * 257 plus a low byte of detail, so 16 bits are really used."""
    w, h = image.size
    rgb, a = image.tobytes(), alpha.tobytes()
    rows = bytearray()
    for y in range(h):
        rows.append(0)
        for x in range(w):
            i = y * w + x
            for v in (rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2], a[i]):
                rows += struct.pack(">H", v * 257 - ((x ^ y) & 0x3F if v else 0))
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    with open(path, "wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 6, 0, 0, 0))
                  + chunk(b"IDAT", zlib.compress(bytes(rows), 6)) + chunk(b"IEND", b""))


def alpha_mask(size):
    """Opaque in the middle, fading to transparent at the left and right edges."""
    w, h = size
    ramp = Image.linear_gradient("L").resize((w // 2, h))
    mask = Image.new("L", size, 255)
    mask.paste(ramp, (0, 0))
    mask.paste(ramp.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (w - w // 2, 0))
    return mask


def main():
    out_dir = sys.argv[1]
    sizes = SMALL if "--small" in sys.argv else SIZES
    os.makedirs(out_dir, exist_ok=True)
    if os.path.exists(SOURCE):
        source = Image.open(SOURCE).convert("RGB")
    elif "--small" in sys.argv:
        source = synthetic((640, 480))  # seeds need every kind of file, not a real photo
    else:
        sys.exit(f"{SOURCE} is missing: set BENCH_SOURCE to a large photo")
    path = lambda name: os.path.join(out_dir, name)  # noqa: E731
    for label, size in sizes.items():
        image = photo(source, size)
        image.save(path(f"jpeg-{label}-420.jpg"), quality=90, subsampling=2)
        image.save(path(f"jpeg-{label}-progressive.jpg"), quality=90, subsampling=2, progressive=True)
        if label in ("2mp", "12mp"):
            image.save(path(f"jpeg-{label}-444.jpg"), quality=90, subsampling=0)
            image.save(path(f"jpeg-{label}-422.jpg"), quality=90, subsampling=1)
            cjpeg(image, path(f"jpeg-{label}-440.jpg"), "-sample", "1x2")
            cjpeg(image, path(f"jpeg-{label}-411.jpg"), "-sample", "4x1")
            cjpeg(image, path(f"jpeg-{label}-restarts.jpg"), "-restart", "1")
            image.convert("L").save(path(f"jpeg-{label}-gray.jpg"), quality=90)
            image.convert("CMYK").save(path(f"jpeg-{label}-cmyk.jpg"), quality=90)
            # Stored sideways, displayed upright once orientation 6 (rotate 90 clockwise) applies.
            exif = Image.Exif()
            exif[0x0112] = 6
            image.transpose(Image.Transpose.ROTATE_90).save(
                path(f"jpeg-{label}-exif6.jpg"), quality=90, subsampling=2, exif=exif.tobytes())
        if label == "2mp":
            rgba = image.copy()
            rgba.putalpha(alpha_mask(size))
            rgba.save(path(f"png-{label}-rgba8.png"))
            png16(image, alpha_mask(size), path(f"png-{label}-rgba16.png"))
            image.save(path(f"webp-{label}.webp"), quality=85, method=4)
            image.quantize(256, dither=Image.Dither.NONE).save(path(f"gif-{label}.gif"))
    for name in sorted(os.listdir(out_dir)):
        print(f"{os.path.getsize(path(name)):>10}  {name}")


if __name__ == "__main__":
    main()
