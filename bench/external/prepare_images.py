"""Builds an image set for a photo classifier from pictures Debian ships: wallpaper photos
(gnome-backgrounds, mate-backgrounds, lomiri-wallpapers; several crops of each) and clip art
(openclipart-png, on white). Writes OUT/pool/NNNN.jpg at SIZE x SIZE (labels come later, from
the dense model). Deterministic.

Usage: python3 prepare_images.py OUT [SIZE] [PER_PHOTO] [DRAWINGS]
"""
import glob
import os
import random
import sys

from PIL import Image

PHOTO_DIRS = ["/usr/share/backgrounds", "/usr/share/backgrounds/mate/nature", "/usr/share/backgrounds/mate/desktop", "/usr/share/backgrounds/gnome"]
CLIPART = "/usr/share/openclipart/png"


def main(out, size=224, per_photo=8, drawings=360):
    size, per_photo, drawings = int(size), int(per_photo), int(drawings)
    rng = random.Random(7)
    pool = os.path.join(out, "pool")
    os.makedirs(pool, exist_ok=True)
    photos = sorted(p for d in PHOTO_DIRS for p in glob.glob(os.path.join(d, "*")) if p.lower().endswith((".jpg", ".jpeg", ".png", ".webp")))
    clipart = sorted(glob.glob(os.path.join(CLIPART, "**", "*.png"), recursive=True))
    if not photos or not clipart:
        raise SystemExit("install the pictures first: apt-get install gnome-backgrounds mate-backgrounds lomiri-wallpapers openclipart-png")
    n = 0
    for p in photos:
        im = Image.open(p).convert("RGB")
        w, h = im.size
        for _ in range(per_photo):
            side = int(min(w, h) * rng.uniform(0.25, 1.0))
            x, y = rng.randint(0, w - side), rng.randint(0, h - side)
            im.crop((x, y, x + side, y + side)).resize((size, size), Image.BILINEAR).save(os.path.join(pool, f"{n:04d}.jpg"), quality=90)
            n += 1
    for p in rng.sample(clipart, drawings):
        im = Image.open(p).convert("RGBA")
        im.thumbnail((size - 16, size - 16), Image.BILINEAR)
        canvas = Image.new("RGBA", (size, size), (255, 255, 255, 255))
        canvas.alpha_composite(im, ((size - im.size[0]) // 2, (size - im.size[1]) // 2))
        canvas.convert("RGB").save(os.path.join(pool, f"{n:04d}.jpg"), quality=90)
        n += 1
    print(f"{len(photos)} photos x {per_photo} crops + {drawings} drawings = {n} images -> {pool}")


if __name__ == "__main__":
    main(*sys.argv[1:])
