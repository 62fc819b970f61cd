"""Turn an uploaded picture or a canvas drawing into one digit made the way MNIST's were.

MNIST's recipe: each digit's ink was fitted, aspect ratio kept, into a 20x20 box (anti-aliasing gives the grey
levels), then placed in a 28x28 black image so that its centre of mass is at the centre (14, 14). A real picture
needs some steps first: greyscale, inversion when the ink is dark on a light background, and a contrast stretch so
the ink is as white as MNIST's. `prepare_upload` takes the bytes of an image file, `prepare_drawing` the RGBA array of
a drawing canvas; both return the digit and notes saying what was done to it.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

SIDE = 28  # MNIST's image size
BOX = 20  # the ink's longer side in MNIST
MAX_BYTES = 32 * 2**20
MAX_PIXELS = 4096 * 4096
WORK_SIDE = 1024  # bigger pictures are shrunk to this first: 20 px cannot use more detail, and it averages noise
MIN_CONTRAST = 0.08  # brightest minus darkest pixel below this: nothing drawn, only noise or compression artefacts
FIT_SIDE = 64  # the background is fitted on a thumbnail this size: light changes slowly
INK_LEVEL = 0.3  # of the brightest ink: fainter pixels (paper texture, shadows) do not widen the bounding box
EXIF_ORIENTATION = 0x0112
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")  # Image.open would otherwise try EPS, which runs Ghostscript

# What PIL's decoders raise on malformed input; anything else is a bug worth seeing
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError, struct.error,
                 zlib.error)

NOT_AN_IMAGE = ("This file is not an image the explorer can read (PNG, JPEG, GIF, BMP, WebP or TIFF): "
                "upload a picture of one digit.")
DAMAGED = "This image file is damaged or cut short ({reason}): save or export it again and upload the new file."
TOO_BIG = ("This image is {width} x {height} pixels, more than the {limit} million allowed: "
           "crop it to the digit or shrink it, then upload it again.")
BLANK_IMAGE = "No digit found: the image is blank, or holds only faint noise. Upload a picture with one digit in it."
BLANK_CANVAS = "No digit found: the canvas is empty. Draw a digit first."


class UploadError(ValueError):
    """The picture cannot become a digit; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class Prepared:
    digit: np.ndarray  # (28, 28) float32 in [0, 1], white ink on black, like MNIST
    notes: tuple[str, ...]  # what was done to the picture, for the user


def prepare_upload(data: bytes) -> Prepared:
    """The digit in an image file's bytes; raise UploadError when there is none or the file cannot be read."""
    notes: list[str] = []
    image = open_image(data, notes)
    grey, alpha = channels(image, notes)
    if alpha is not None:
        grey = composite(grey, alpha, notes)
    return Prepared(mnist_digit(grey, notes, blank=BLANK_IMAGE), tuple(notes))


def prepare_drawing(rgba: np.ndarray) -> Prepared:
    """The digit drawn on a canvas: an (H, W, 4) RGBA array, uint8 or float in [0, 1].

    Where the canvas is transparent and the strokes opaque, the opacity alone is the ink: the colour a canvas
    stores under transparent pixels is arbitrary (often black, the same as black strokes). An opaque canvas is read
    by its brightness, so white on black and black on white both work.
    """
    array = np.asarray(rgba)
    if array.ndim != 3 or array.shape[2] not in (3, 4) or 0 in array.shape:
        raise ValueError(f"a drawing must be an (H, W, 4) RGBA or (H, W, 3) RGB array, not shape {array.shape}")
    if array.shape[0] * array.shape[1] > MAX_PIXELS:
        raise UploadError(TOO_BIG.format(width=array.shape[1], height=array.shape[0], limit=MAX_PIXELS // 10**6))
    values = array.astype(np.float32)
    values = values / 255 if np.issubdtype(array.dtype, np.integer) else np.nan_to_num(values)
    values = values.clip(0, 1)
    notes: list[str] = []
    alpha = values[..., 3] if array.shape[2] == 4 else None
    if alpha is not None and alpha.max() - alpha.min() >= MIN_CONTRAST:
        notes.append("alpha channel: the strokes' opacity is the ink, transparent pixels are background")
        digit = mnist_digit(shrink(alpha), notes, blank=BLANK_CANVAS, invert=False)
    else:
        digit = mnist_digit(shrink(luminance(values[..., :3])), notes, blank=BLANK_CANVAS)
    return Prepared(digit, tuple(notes))


# ---------------------------------------------------------------------------------------------------------------
# Reading a file


def open_image(data: bytes, notes: list[str]) -> Image.Image:
    """Decode the first frame, refusing oversized images before any pixel is decoded."""
    if not data:
        raise UploadError("The file is empty: upload a picture of one digit.")
    if len(data) > MAX_BYTES:
        raise UploadError(f"The file is {len(data) / 2**20:.0f} MB, more than the {MAX_BYTES // 2**20} MB allowed: "
                          "crop the picture to the digit or save it smaller, then upload it again.")
    try:
        # PIL reads only the header here; its own bomb check raises for sizes far beyond ours
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UploadError(f"This image claims to be enormous ({exc}): upload a normal-sized picture of a digit."
                          ) from exc
    except DECODE_ERRORS as exc:
        raise UploadError(NOT_AN_IMAGE) from exc
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise UploadError(TOO_BIG.format(width=width, height=height, limit=MAX_PIXELS // 10**6))
    if width == 0 or height == 0:
        raise UploadError(DAMAGED.format(reason="it has no pixels"))
    try:
        frames = getattr(image, "n_frames", 1)
        image.seek(0)
        if image.format in ("JPEG", "MPO") and max(width, height) > 2 * WORK_SIDE:
            image.draft(image.mode, (WORK_SIDE, WORK_SIDE))  # the decoder skips detail we would throw away
        image.load()
    except DECODE_ERRORS as exc:
        raise UploadError(DAMAGED.format(reason=exc)) from exc
    if frames > 1:
        notes.append(f"used the first of {frames} frames (the file is animated or holds several pictures)")
    return upright(image, notes)


def upright(image: Image.Image, notes: list[str]) -> Image.Image:
    """Apply the EXIF orientation, as phones store photos sideways; a broken EXIF block is ignored, not fatal."""
    try:
        if image.getexif().get(EXIF_ORIENTATION, 1) in range(2, 9):
            image = ImageOps.exif_transpose(image)
            notes.append("turned upright as the photo's EXIF orientation says")
    except DECODE_ERRORS:
        pass
    return image


def channels(image: Image.Image, notes: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """Greyscale in [0, 1], and the opacity in [0, 1] if some pixels are transparent; big images shrunk."""
    mode = image.mode
    if mode.startswith("I;16"):
        notes.append("16-bit greyscale: read 0..65535 as black..white")
        return shrink(np.asarray(image, dtype=np.float32) / 65535), None
    if mode in ("I", "F"):
        return shrink(wide_values(np.asarray(image, dtype=np.float64))), None
    try:
        if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
            rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255
            grey, alpha = luminance(rgba[..., :3]), rgba[..., 3]
            return shrink(grey), (shrink(alpha) if alpha.min() < 1 else None)
        # CMYK, YCbCr, palette and bilevel images all reach greyscale through RGB
        grey_image = image if mode == "L" else image.convert("RGB").convert("L")
    except ValueError as exc:  # a mode PIL cannot convert, e.g. LAB
        raise UploadError(f"This image's colour mode ({mode}) is not supported: save it as PNG or JPEG and upload "
                          "it again.") from exc
    return shrink(np.asarray(grey_image, dtype=np.float32) / 255), None


def wide_values(values: np.ndarray) -> np.ndarray:
    """32-bit integer or float pixels have no fixed range: take [0, 1], 8-bit or 16-bit, whichever they fit."""
    values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0).clip(0, None)
    top = values.max()
    scale = 1.0 if top <= 1 else 255.0 if top <= 255 else 65535.0
    return (values / scale).clip(0, 1).astype(np.float32)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma, the weights PIL's convert("L") uses."""
    return (rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)).astype(np.float32)


def composite(grey: np.ndarray, alpha: np.ndarray, notes: list[str]) -> np.ndarray:
    """Lay a transparent picture on the background that shows its drawing.

    White is what image viewers show behind transparency, and it keeps a dark digit on a white card with
    transparent surroundings intact (on black, the card itself would look like the ink). But light strokes on a
    transparent background, as dark-mode drawing apps export them, vanish on white; so black is used when it shows
    clearly more contrast.
    """
    over_white = grey * alpha + (1 - alpha)
    over_black = grey * alpha
    if spread(over_black) > spread(over_white) + MIN_CONTRAST:
        notes.append("alpha channel: transparent pixels read as a black background, since the drawing is light")
        return over_black
    notes.append("alpha channel: transparent pixels read as a white background, as image viewers show them")
    return over_white


def spread(values: np.ndarray) -> float:
    return float(values.max() - values.min())


def shrink(values: np.ndarray) -> np.ndarray:
    """Fit a float image within WORK_SIDE, averaging pixels (which also averages out sensor noise)."""
    height, width = values.shape
    if max(height, width) <= WORK_SIDE:
        return values.astype(np.float32, copy=False)
    scale = WORK_SIDE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(values.astype(np.float32), "F").resize(size, Image.BOX))


# ---------------------------------------------------------------------------------------------------------------
# MNIST's normalisation


def mnist_digit(grey: np.ndarray, notes: list[str], blank: str, invert: bool | None = None) -> np.ndarray:
    """A greyscale picture in [0, 1] -> (28, 28) float32, white ink on black, sized and centred as in MNIST.

    `invert` None decides from the picture: the background is what fills most of the outer frame. The ink is then
    measured against the background's level where it lies, so uneven lighting does not pass for ink.
    """
    low, high = float(grey.min()), float(grey.max())
    if high - low < MIN_CONTRAST:
        raise UploadError(blank)
    if invert is None:
        # against the picture's own range, not 0.5: a dimly lit sheet of paper is still the light side
        invert = float(np.median(outer_frame(grey))) > (low + high) / 2
    if invert:
        notes.append("inverted: the background was light, MNIST's is black")
        # light falling unevenly on paper scales its brightness, so dividing by the paper's brightness evens it out
        ink = 1 - grey / np.maximum(background(grey, light=True), 1e-6)
    else:
        ink = grey - background(grey, light=False)
    return centre(fit_box(crop_to_ink(stretch(ink, notes, blank))))


def background(grey: np.ndarray, light: bool) -> np.ndarray:
    """The background's brightness at every pixel, ink left out: a smooth surface fitted to the background.

    Light falling across a sheet of paper changes smoothly, so a quadratic in x and y describes it; a stroke, however
    bold, is not smooth and stays ink. The fit is made on a thumbnail: first to the pixels on the background's side
    of the midpoint, then, a few times over, to those not darker than the last fit by more than the noise (ink and
    the anti-aliased edges of strokes drop out). A uniform background gives a flat surface at its own level, so
    clean pictures are untouched.
    """
    height, width = grey.shape
    scale = min(1.0, FIT_SIDE / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = np.asarray(Image.fromarray(grey.astype(np.float32), "F").resize(size, Image.BOX), dtype=np.float64)
    values = (small if light else -small).ravel()  # from here on the background is the high side
    contrast = values.max() - values.min()
    design = np.stack([np.broadcast_to(term, small.shape).ravel() for term in quadratic_terms(*small.shape)], axis=1)
    # ink only takes pixels away from the background's level, so those well below the fit are ink: "well" is
    # 3 sigma of the noise, or 2% of the contrast in a clean picture with no noise at all
    tolerance = max(3 * noise_level(small), contrast / 50)
    keep = values > values.min() + contrast / 2
    for _ in range(5):
        if keep.sum() < 3 * design.shape[1]:  # too few pixels to fit a surface to: take their level
            level = np.median(values[keep]) if keep.any() else values.max()
            return np.full((height, width), level if light else -level, dtype=np.float32)
        # the normal equations: 6 x 6, where least squares on the thumbnail's pixels directly is far slower
        chosen, seen = design[keep], values[keep]
        coefficients = np.linalg.lstsq(chosen.T @ chosen, chosen.T @ seen, rcond=None)[0]
        keep = values - design @ coefficients > -tolerance
    # clipped to the background seen: no wild extrapolation into corners covered with ink
    fitted = sum(c * term for c, term in zip(coefficients, quadratic_terms(height, width), strict=True))
    fitted = np.broadcast_to(fitted, (height, width)).clip(seen.min(), seen.max())
    return (fitted if light else -fitted).astype(np.float32)


def noise_level(values: np.ndarray) -> float:
    """The standard deviation of pixel noise, from differences between neighbours: edges are too few to matter."""
    steps = np.concatenate([np.diff(values, axis=0).ravel(), np.diff(values, axis=1).ravel()])
    return 1.4826 * float(np.median(np.abs(steps))) / np.sqrt(2) if steps.size else 0.0


def quadratic_terms(height: int, width: int) -> list[np.ndarray]:
    """1, x, y, x^2, xy, y^2 at the pixels' centres, x and y in [0, 1] at any resolution; they broadcast together."""
    y = ((np.arange(height) + 0.5) / height)[:, None]
    x = ((np.arange(width) + 0.5) / width)[None, :]
    return [np.ones((1, 1)), x, y, x * x, x * y, y * y]


def stretch(ink: np.ndarray, notes: list[str], blank: str) -> np.ndarray:
    """Map the background, and the noise on it, to 0 and the brightest ink to 1.

    `ink` is brightness above the background, not clipped: ink only adds, so the part below zero is the background's
    noise alone, however much of the picture the ink covers, and it tells how high noise reaches above zero.
    """
    below = -ink[ink < 0]
    noise = 1.4826 * float(np.median(below)) if below.size else 0.0  # half-normal: median = 0.6745 sigma
    floor = 3 * noise
    # blurred, sensor noise is too weak to pass for ink, while strokes keep most of their brightness
    if float(blur(ink).max()) - floor < MIN_CONTRAST:
        raise UploadError(blank)
    high = float(ink.max())
    if floor > 0.02 or high < 0.98:
        notes.append("stretched the contrast: the background is now black and the brightest ink white")
    return ((ink - floor) / (high - floor)).clip(0, 1)


def outer_frame(values: np.ndarray) -> np.ndarray:
    return np.concatenate([values[0], values[-1], values[:, 0], values[:, -1]])


def crop_to_ink(ink: np.ndarray) -> np.ndarray:
    """The ink's bounding box; specks (single bright pixels of noise) and faint haze do not count."""
    smooth = blur(ink)
    mask = (ink >= INK_LEVEL * ink.max()) & (smooth >= INK_LEVEL * smooth.max())
    if not mask.any():  # only possible for ink finer than one pixel: keep it all rather than nothing
        mask = ink >= INK_LEVEL * ink.max()
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def blur(values: np.ndarray) -> np.ndarray:
    """A 3x3 binomial blur: an isolated pixel keeps 1/4 of its value, a stroke 3 pixels wide nearly all of it."""
    padded = np.pad(values, 1, mode="edge")
    rows = (padded[:-2] + 2 * padded[1:-1] + padded[2:]) / 4
    return (rows[:, :-2] + 2 * rows[:, 1:-1] + rows[:, 2:]) / 4


def fit_box(ink: np.ndarray) -> np.ndarray:
    """Resize so the longer side is BOX pixels, aspect ratio kept, anti-aliased as MNIST's were."""
    height, width = ink.shape
    scale = BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = Image.fromarray(ink.astype(np.float32), "F").resize(size, Image.LANCZOS)
    resized = np.asarray(resized).clip(0, 1)  # Lanczos rings slightly outside [0, 1]
    # strokes much thinner than MNIST's pen fade when averaged down: brighten them so the ink still reaches 1
    return resized / resized.max() if resized.max() > 0 else resized


def centre(ink: np.ndarray) -> np.ndarray:
    """Paste into a black 28x28 image with the centre of mass at (14, 14), nothing cut off at the edges."""
    height, width = ink.shape
    total = float(ink.sum())
    if total > 0:
        row = float((ink.sum(axis=1) * np.arange(height)).sum()) / total
        col = float((ink.sum(axis=0) * np.arange(width)).sum()) / total
    else:
        row, col = (height - 1) / 2, (width - 1) / 2
    # in pixel indices, the convention in which MNIST's own digits average (14.0, 14.0)
    top = int(np.clip(round(SIDE / 2 - row), 0, SIDE - height))
    left = int(np.clip(round(SIDE / 2 - col), 0, SIDE - width))
    digit = np.zeros((SIDE, SIDE), dtype=np.float32)
    digit[top : top + height, left : left + width] = ink
    return digit
