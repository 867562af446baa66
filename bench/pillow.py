"""Pillow as a user's code would thumbnail: orientation from EXIF applied (as
ImageOps.exif_transpose does), 16-bit and palette
images converted, alpha flattened on white, 200 px wide (never upscaled), JPEG q80; draft mode
(JPEG DCT scaling) as thumbnail() uses it. Single thread.

    python pillow.py serve   one request a line on stdin: {"file": ..., "out": ...}
                             -> {"ms": wall time of the thumbnail} a line on stdout
"""
import io
import json
import sys
import time

from PIL import Image

SWAPS = {5, 6, 7, 8}
# What ImageOps.exif_transpose does for each EXIF orientation.
TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def thumbnail(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as im:
        orientation = im.getexif().get(0x0112, 1)
        w, h = im.size
        shown_w, shown_h = (h, w) if orientation in SWAPS else (w, h)
        tw = min(200, shown_w)
        th = max(1, (shown_h * tw + shown_w // 2) // shown_w)
        # In stored orientation. thumbnail() would fit a box and may round the width to 199 (a
        # 200 x 133 box for 6000 x 4000); what it does inside, with the exact size: draft() for
        # twice the size (its reducing_gap=2.0: DCT scaling keeps a 2x margin), then resize.
        size = (th, tw) if orientation in SWAPS else (tw, th)
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            im = im.point(lambda v: v / 256).convert("L")
        elif im.mode == "P":
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        if im.format == "JPEG":
            im.draft(None, (size[0] * 2, size[1] * 2))
        im = im.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
        # ImageOps.exif_transpose's transform, on the small image: thumbnail() keeps no EXIF to
        # read it from, and transposing first would forgo draft mode.
        if orientation in TRANSPOSE:
            im = im.transpose(TRANSPOSE[orientation])
        if im.mode in ("RGBA", "LA", "PA"):
            background = Image.new("RGB", im.size, (255, 255, 255))
            background.paste(im.convert("RGBA"), mask=im.getchannel("A"))
            im = background
        out = io.BytesIO()
        im.convert("RGB").save(out, "JPEG", quality=80)
        return out.getvalue()


def main() -> None:
    assert sys.argv[1:] == ["serve"], __doc__
    for line in sys.stdin:
        request = json.loads(line)
        data = open(request["file"], "rb").read()
        start = time.perf_counter()
        out = thumbnail(data)
        elapsed = (time.perf_counter() - start) * 1000
        open(request["out"], "wb").write(out)
        print(json.dumps({"ms": elapsed}), flush=True)


main()
