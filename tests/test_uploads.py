"""Uploads and drawings become MNIST digits: real MNIST digits, saved the ways users save pictures, come back."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image, ImageFile, ImageFilter

from explorer import models
from explorer.data import load_sample, uploads
from explorer.data.uploads import Prepared, UploadError, prepare_drawing, prepare_upload

ACTIONS = ("upload", "draw", "save", "crop")  # every error message must tell the user one of these


@pytest.fixture(scope="module")
def sample() -> tuple[np.ndarray, np.ndarray]:
    images, labels, _ = load_sample()
    return images, labels


@pytest.fixture(scope="module")
def digit(sample) -> np.ndarray:
    """A real MNIST 7 (uint8, white on black)."""
    images, labels = sample
    return images[np.flatnonzero(labels == 7)[0]]


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def on_paper(digit: np.ndarray, scale: int = 5) -> Image.Image:
    """Black ink on white, scaled up: how a digit looks in a screenshot or a scan."""
    return Image.fromarray(255 - digit, mode="L").resize((28 * scale, 28 * scale), Image.NEAREST)


def centre_of_mass(image: np.ndarray) -> np.ndarray:
    rows, cols = np.indices(image.shape)
    return np.array([(rows * image).sum(), (cols * image).sum()]) / image.sum()


def assert_round_trip(prepared: uploads.Prepared, digit: np.ndarray, tolerance: float = 0.05) -> None:
    assert prepared.digit.shape == (28, 28)
    assert prepared.digit.dtype == np.float32
    assert prepared.digit.min() >= 0 and prepared.digit.max() <= 1
    assert np.abs(prepared.digit - digit / 255).mean() < tolerance
    assert prepared.digit.sum() == pytest.approx(digit.sum() / 255, rel=0.1)  # as bright and as bold as MNIST's
    assert np.abs(centre_of_mass(prepared.digit) - 14).max() <= 1


def assert_says_what_to_do(error: pytest.ExceptionInfo[UploadError]) -> None:
    message = str(error.value).lower()
    assert message and any(action in message for action in ACTIONS), message


def png_claiming_size(width: int, height: int) -> bytes:
    """A valid 1x1 PNG whose header is patched to claim another size: PIL sees the size before any pixel."""
    data = bytearray(encode(Image.new("L", (1, 1))))
    data[16:24] = struct.pack(">II", width, height)  # IHDR data starts after the signature, length and type
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # CRC over the chunk type and data
    return bytes(data)


# ---------------------------------------------------------------------------------------------------------------
# Real digits, saved the ways users save pictures


def test_black_on_white_png_round_trips(digit):
    prepared = prepare_upload(encode(on_paper(digit)))
    assert_round_trip(prepared, digit)
    assert any("inverted" in note for note in prepared.notes)


def test_white_on_black_is_not_inverted(digit):
    prepared = prepare_upload(encode(Image.fromarray(digit).resize((84, 84), Image.NEAREST)))
    assert_round_trip(prepared, digit)
    assert not any("inverted" in note for note in prepared.notes)


def test_an_mnist_digit_at_its_own_size_comes_back_nearly_unchanged(digit):
    prepared = prepare_upload(encode(Image.fromarray(digit)))
    assert_round_trip(prepared, digit, tolerance=0.02)


def test_rgb_jpeg_round_trips(digit):
    assert_round_trip(prepare_upload(encode(on_paper(digit).convert("RGB"), "JPEG", quality=85)), digit)


def test_cmyk_jpeg_and_tiff_round_trip(digit):
    cmyk = on_paper(digit).convert("RGB").convert("CMYK")
    assert_round_trip(prepare_upload(encode(cmyk, "JPEG", quality=90)), digit)
    assert_round_trip(prepare_upload(encode(cmyk, "TIFF")), digit)


def test_16_bit_png_is_scaled_to_the_unit_range(digit):
    deep = Image.fromarray((65535 - digit.astype(np.uint16) * 257).repeat(4, 0).repeat(4, 1))
    data = encode(deep)
    assert Image.open(io.BytesIO(data)).mode.startswith("I;16")
    prepared = prepare_upload(data)
    assert_round_trip(prepared, digit)
    assert any("16-bit" in note for note in prepared.notes)


def test_palette_png_round_trips(digit):
    palette = on_paper(digit).convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    assert_round_trip(prepare_upload(encode(palette)), digit)


def test_palette_png_with_a_transparent_background(digit):
    palette = on_paper(digit).convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    background = palette.getpixel((0, 0))
    prepared = prepare_upload(encode(palette, transparency=background))
    assert_round_trip(prepared, digit)
    assert any("alpha" in note for note in prepared.notes)


def test_dark_strokes_on_a_transparent_background_become_ink(digit):
    # the colour under transparent pixels is black, as most editors store it: read naively, it would be ink
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[..., 3] = digit
    for mode in ("RGBA", "LA"):
        image = Image.fromarray(rgba, "RGBA").convert(mode).resize((140, 140), Image.NEAREST)
        prepared = prepare_upload(encode(image))
        assert_round_trip(prepared, digit)
        assert any("white background" in note for note in prepared.notes)


def test_light_strokes_on_a_transparent_background_become_ink(digit):
    rgba = np.full((28, 28, 4), 255, np.uint8)
    rgba[..., 3] = digit
    prepared = prepare_upload(encode(Image.fromarray(rgba, "RGBA").resize((140, 140), Image.NEAREST)))
    assert_round_trip(prepared, digit)
    assert any("black background" in note for note in prepared.notes)


def test_a_white_card_with_transparent_surroundings_keeps_its_digit(digit):
    # the card is opaque, the ink on it is dark: on a black background the card itself would become the "digit"
    card = np.zeros((200, 200, 4), np.uint8)
    card[30:170, 30:170, :3] = np.asarray(on_paper(digit))[..., None]
    card[30:170, 30:170, 3] = 255
    assert_round_trip(prepare_upload(encode(Image.fromarray(card, "RGBA"))), digit)


def test_animated_gif_uses_the_first_frame(sample):
    images, labels = sample
    first, *others = (on_paper(images[np.flatnonzero(labels == c)[0]]) for c in (3, 8, 1))
    data = encode(first, "GIF", save_all=True, append_images=others, duration=100)
    prepared = prepare_upload(data)
    assert_round_trip(prepared, images[np.flatnonzero(labels == 3)[0]], tolerance=0.06)
    assert any("first of 3 frames" in note for note in prepared.notes)


def test_exif_orientation_turns_a_phone_photo_upright(digit):
    sideways = on_paper(digit).convert("RGB").transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    prepared = prepare_upload(encode(sideways, "JPEG", quality=90, exif=exif))
    assert_round_trip(prepared, digit)
    assert any("EXIF" in note for note in prepared.notes)


def test_faint_ink_is_stretched_to_white(digit):
    pencil = Image.fromarray(255 - (digit * 0.4).astype(np.uint8)).resize((140, 140), Image.NEAREST)  # 60% grey
    prepared = prepare_upload(encode(pencil))
    assert_round_trip(prepared, digit)
    assert any("stretched" in note for note in prepared.notes)


def test_dimly_lit_paper_is_still_the_background(digit):
    # paper photographed in poor light is darker than mid-grey, yet still the light side of the picture
    dim = np.asarray(on_paper(digit), dtype=np.float64) / 255 * 0.3 + 0.05
    prepared = prepare_upload(encode(Image.fromarray((dim * 255).astype(np.uint8))))
    assert_round_trip(prepared, digit)
    assert any("inverted" in note for note in prepared.notes)


def photo(digit: np.ndarray | None, rng: np.random.Generator) -> Image.Image:
    """A dark digit (or None) on a sheet lit unevenly (brighter to the right), with sensor noise, off centre."""
    height, width = 480, 640
    rows, cols = np.indices((height, width))
    paper = 0.55 + 0.3 * cols / width + 0.1 * rows / height
    ink = np.zeros((height, width))
    top, left = rng.integers(20, height - 220), rng.integers(20, width - 220)
    if digit is not None:
        ink[top : top + 200, left : left + 200] = np.asarray(Image.fromarray(digit).resize((200, 200), Image.BILINEAR))
    pixels = paper * (1 - 0.8 * ink / 255) + rng.normal(0, 0.03, (height, width))
    return Image.fromarray((pixels.clip(0, 1) * 255).astype(np.uint8)).convert("RGB")


def predict(model: torch.nn.Module, digits: list[np.ndarray]) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(np.stack(digits))[:, None]).argmax(1).numpy()


@pytest.fixture(scope="module")
def softmax_model():
    return models.load("softmax")


@pytest.fixture(scope="module")
def fifty(sample) -> tuple[np.ndarray, np.ndarray]:
    """Five real digits of each class."""
    images, labels = sample
    chosen = np.concatenate([np.flatnonzero(labels == c)[:5] for c in range(10)])
    return images[chosen], labels[chosen]


def test_the_model_still_reads_round_tripped_digits(softmax_model, fifty):
    images, labels = fifty
    prepared = [prepare_upload(encode(on_paper(image, scale=4))).digit for image in images]
    assert (predict(softmax_model, prepared) == labels).mean() >= 0.9


def test_the_model_reads_photos_of_digits_on_unevenly_lit_paper(softmax_model, fifty):
    images, labels = fifty
    rng = np.random.default_rng(0)
    prepared = [prepare_upload(encode(photo(image, rng), "JPEG", quality=85)) for image in images[::2]]
    assert (predict(softmax_model, [p.digit for p in prepared]) == labels[::2]).mean() >= 0.9
    assert all(any("inverted" in note for note in p.notes) for p in prepared)


def bold_and_cropped(digit: np.ndarray) -> Image.Image:
    """Black strokes a fifth of the digit's height thick, cropped to the ink: the background is a thin margin."""
    bold = Image.fromarray(digit).resize((140, 140), Image.BILINEAR).filter(ImageFilter.MaxFilter(9))
    pixels = 255 - np.asarray(bold)
    rows, cols = np.flatnonzero((pixels < 128).any(axis=1)), np.flatnonzero((pixels < 128).any(axis=0))
    return Image.fromarray(pixels[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1])


def test_the_model_reads_bold_digits_cropped_to_the_ink(softmax_model, fifty):
    # strokes this wide fill much of the picture: they must stay ink, not be mistaken for uneven lighting
    images, labels = fifty
    prepared = [prepare_upload(encode(bold_and_cropped(image))).digit for image in images[::2]]
    assert (predict(softmax_model, prepared) == labels[::2]).mean() >= 0.9


def test_the_model_reads_chalk_on_an_unevenly_lit_board(softmax_model, fifty):
    images, labels = fifty
    rng = np.random.default_rng(2)
    boards = [Image.fromarray(255 - np.asarray(photo(image, rng).convert("L"))) for image in images[::2]]
    prepared = [prepare_upload(encode(board)) for board in boards]
    assert (predict(softmax_model, [p.digit for p in prepared]) == labels[::2]).mean() >= 0.9
    assert not any("inverted" in note for p in prepared for note in p.notes)


def test_a_photo_of_blank_paper_is_refused():
    with pytest.raises(UploadError, match="blank"):
        prepare_upload(encode(photo(None, np.random.default_rng(1)), "JPEG", quality=85))
    grainy = 0.7 + np.random.default_rng(2).normal(0, 0.04, (64, 64))  # small, so no shrinking averages it out
    with pytest.raises(UploadError, match="blank"):
        prepare_upload(encode(Image.fromarray((grainy.clip(0, 1) * 255).astype(np.uint8))))


# ---------------------------------------------------------------------------------------------------------------
# Odd shapes


def test_a_tiny_image_is_scaled_up_to_the_box():
    bar = np.full((5, 5), 255, np.uint8)
    bar[:, 2] = 0  # a dark "1" on white
    digit = prepare_upload(encode(Image.fromarray(bar))).digit
    rows, cols = np.flatnonzero(digit.max(axis=1) > 0.5), np.flatnonzero(digit.max(axis=0) > 0.5)
    assert rows[-1] - rows[0] + 1 == 20
    assert cols[-1] - cols[0] + 1 <= 6
    assert np.abs(centre_of_mass(digit) - 14).max() <= 1


def test_a_very_wide_image_keeps_its_aspect_ratio():
    strip = np.full((40, 2000), 255, np.uint8)
    strip[15:25, 100:1900] = 0  # a dash 10 px high, 1800 px long
    digit = prepare_upload(encode(Image.fromarray(strip))).digit
    rows, cols = np.flatnonzero(digit.max(axis=1) > 0.5), np.flatnonzero(digit.max(axis=0) > 0.5)
    assert cols[-1] - cols[0] + 1 == 20
    assert rows[-1] - rows[0] + 1 <= 2


def test_thin_lines_drawn_large_survive_scaling_down():
    # a "+" drawn with a 2 px pen in a 300 px picture: at 20 px each line covers a tenth of a pixel's width
    cross = np.full((300, 300), 255, np.uint8)
    cross[149:151, :] = 0
    cross[:, 149:151] = 0
    digit = prepare_upload(encode(Image.fromarray(cross))).digit
    assert digit.max() == pytest.approx(1)
    assert (digit > 0.2).sum(axis=1).max() >= 18  # the horizontal line, nearly 20 px long
    assert (digit > 0.2).sum(axis=0).max() >= 18  # the vertical one


def test_a_speck_of_noise_does_not_widen_the_digit(digit):
    paper = np.asarray(on_paper(digit)).copy()
    paper[2, 2] = 0  # one dark pixel far from the digit
    assert_round_trip(prepare_upload(encode(Image.fromarray(paper))), digit)


def test_centring_never_pushes_ink_off_the_canvas():
    ink = np.zeros((20, 20), np.float32)
    ink[:4, :4] = 1  # all the mass in a corner: centring it at (14, 14) would need a shift of 12
    ink[19, 19] = 0.01
    digit = uploads.centre(ink)
    assert digit.sum() == pytest.approx(ink.sum())


# ---------------------------------------------------------------------------------------------------------------
# Files that hold no digit


@pytest.mark.parametrize(("data", "problem"), [
    (b"", "empty"),
    (b"hello, this is a text file", "not an image"),
    (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "not an image"),  # PIL would run Ghostscript on it
])
def test_non_images_are_refused(data, problem):
    with pytest.raises(UploadError, match=problem) as error:
        prepare_upload(data)
    assert_says_what_to_do(error)


def test_a_truncated_png_is_refused(digit):
    data = encode(on_paper(digit))
    with pytest.raises(UploadError) as error:
        prepare_upload(data[: len(data) // 2])
    assert_says_what_to_do(error)


@pytest.mark.parametrize("size", [(50_000, 50_000), (5_000, 5_000)])
def test_huge_images_are_refused_before_decoding(size, monkeypatch):
    def no_decoding(self):
        raise AssertionError("pixel data was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(UploadError) as error:
        prepare_upload(png_claiming_size(*size))
    assert_says_what_to_do(error)


def test_big_files_are_refused(digit, monkeypatch):
    monkeypatch.setattr(uploads, "MAX_BYTES", 1000)
    with pytest.raises(UploadError) as error:
        prepare_upload(encode(on_paper(digit).convert("RGB"), "BMP"))
    assert_says_what_to_do(error)


@pytest.mark.parametrize("image", [
    Image.new("L", (100, 100), 255),
    Image.new("L", (100, 100), 0),
    Image.new("RGB", (60, 30), (120, 80, 200)),
    Image.new("RGBA", (50, 50), (0, 0, 0, 0)),
    Image.new("1", (1, 1)),
    Image.fromarray(np.pad(np.full((20, 10), 600, np.uint16), 10)),  # 16-bit: a patch 1% of the range bright
])
def test_blank_images_are_refused(image):
    with pytest.raises(UploadError, match="blank") as error:
        prepare_upload(encode(image))
    assert_says_what_to_do(error)


def test_a_blank_jpeg_is_refused_despite_compression_noise():
    with pytest.raises(UploadError, match="blank"):
        prepare_upload(encode(Image.new("RGB", (300, 200), (250, 248, 240)), "JPEG", quality=60))


# ---------------------------------------------------------------------------------------------------------------
# Drawings


def canvas(digit: np.ndarray, stroke: int, background: int | None) -> np.ndarray:
    """An RGBA canvas 5x the digit's size: strokes of one colour, background opaque or (None) transparent."""
    big = np.asarray(Image.fromarray(digit).resize((140, 140), Image.NEAREST), dtype=np.float64) / 255
    rgba = np.zeros((140, 140, 4))
    if background is None:
        rgba[..., :3], rgba[..., 3] = stroke, 255 * big
    else:
        rgba[..., :3], rgba[..., 3] = (stroke * big + background * (1 - big))[..., None], 255
    return rgba.round().astype(np.uint8)


@pytest.mark.parametrize(("stroke", "background"), [(0, None), (255, None), (255, 0), (0, 255)])
def test_drawings_round_trip(digit, stroke, background):
    assert_round_trip(prepare_drawing(canvas(digit, stroke, background)), digit)


def test_a_float_canvas_reads_like_a_uint8_one(digit):
    drawn = canvas(digit, 0, None)
    np.testing.assert_allclose(prepare_drawing(drawn / 255).digit, prepare_drawing(drawn).digit, atol=1e-5)


@pytest.mark.parametrize("drawn", [
    np.zeros((200, 200, 4), np.uint8),  # untouched transparent canvas
    np.full((200, 200, 4), 255, np.uint8),  # untouched white canvas
])
def test_an_empty_canvas_asks_for_a_drawing(drawn):
    with pytest.raises(UploadError, match="Draw a digit first"):
        prepare_drawing(drawn)


def test_a_canvas_must_be_rgba():
    with pytest.raises(ValueError, match="RGBA"):
        prepare_drawing(np.zeros((28, 28), np.uint8))


# ---------------------------------------------------------------------------------------------------------------
# Anything at all


@settings(max_examples=50, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 64), st.integers(1, 64))))
def test_any_greyscale_png_gives_a_digit_or_an_upload_error(pixels):
    prepared = check_outcome(encode(Image.fromarray(pixels)))
    if prepared is not None:
        assert prepared.digit.max() > 0
        assert all(isinstance(note, str) and note for note in prepared.notes)


@settings(max_examples=50, deadline=None)
@given(st.sampled_from(["L", "LA", "RGB", "RGBA", "P", "I;16", "1"]),
       arrays(np.uint8, st.tuples(st.integers(1, 48), st.integers(1, 48), st.just(4))),
       st.sampled_from(["PNG", "GIF", "BMP", "TIFF", "WEBP"]))
def test_any_mode_and_format_gives_a_digit_or_an_upload_error(mode, rgba, file_format):
    image = Image.fromarray(rgba, "RGBA")
    image = image.convert(mode) if mode != "I;16" else Image.fromarray(rgba[..., 0].astype(np.uint16) * 257)
    try:
        content = encode(image, file_format)
    except (OSError, ValueError):  # a mode this format cannot store: nothing to upload
        return
    check_outcome(content)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=2048), st.integers(0, 2048))
def test_any_bytes_or_a_damaged_png_give_a_digit_or_an_upload_error(noise, cut):
    check_outcome(noise)
    png = encode(Image.fromarray(np.eye(28, dtype=np.uint8) * 255))
    check_outcome(png[:cut] + noise[:16] + png[cut + 16:])


def check_outcome(content: bytes) -> Prepared | None:
    """A valid digit (returned), or an UploadError with a message (None): never anything else."""
    try:
        prepared = prepare_upload(content)
    except UploadError as error:
        assert str(error)
        return None
    assert prepared.digit.shape == (28, 28) and prepared.digit.dtype == np.float32
    assert np.isfinite(prepared.digit).all() and prepared.digit.min() >= 0 and prepared.digit.max() <= 1
    return prepared
