"""Draw the small committed edit-input images under fixtures/images/ (deterministic: shapes only).

    python scripts/make_fixture_images.py        # rewrites the files

shapes-64x48.png   RGB landscape: sky, sun, hills and a red house
target-96x96.jpg   RGB square JPEG: a red and white target on a blue field
badge-48x64.png    RGBA portrait: a green badge on a transparent background
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parent.parent / "fixtures" / "images"


def shapes() -> Image.Image:
    im = Image.new("RGB", (64, 48), (110, 170, 235))
    d = ImageDraw.Draw(im)
    d.ellipse((44, 4, 58, 18), fill=(255, 215, 40))
    d.ellipse((-20, 28, 40, 70), fill=(60, 160, 70))
    d.ellipse((24, 32, 90, 76), fill=(40, 130, 55))
    d.rectangle((10, 26, 26, 40), fill=(200, 40, 40))
    d.polygon([(8, 26), (18, 17), (28, 26)], fill=(120, 50, 30))
    d.rectangle((16, 32, 20, 40), fill=(90, 60, 30))
    return im


def target() -> Image.Image:
    im = Image.new("RGB", (96, 96), (30, 60, 150))
    d = ImageDraw.Draw(im)
    for i, radius in enumerate((40, 32, 24, 16, 8)):
        colour = (220, 30, 40) if i % 2 == 0 else (245, 245, 245)
        d.ellipse((48 - radius, 48 - radius, 48 + radius, 48 + radius), fill=colour)
    d.line((48, 0, 48, 95), fill=(0, 0, 0), width=2)
    d.line((0, 48, 95, 48), fill=(0, 0, 0), width=2)
    return im


def badge() -> Image.Image:
    im = Image.new("RGBA", (48, 64), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    d.rounded_rectangle((4, 4, 43, 59), radius=10, fill=(40, 170, 90, 255))
    d.ellipse((14, 12, 33, 31), fill=(250, 250, 250, 255))
    d.rectangle((12, 40, 35, 47), fill=(20, 90, 50, 160))
    return im


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    shapes().save(OUT / "shapes-64x48.png", optimize=True)
    target().save(OUT / "target-96x96.jpg", quality=85)
    badge().save(OUT / "badge-48x64.png", optimize=True)
    for path in sorted(OUT.iterdir()):
        sys.stdout.write(f"{path.relative_to(OUT.parent.parent)}  {path.stat().st_size} bytes\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
