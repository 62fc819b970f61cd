"""Pictures of digits: the PNGs the CLI writes and the app offers for download."""

from __future__ import annotations

import io
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image, ImageDraw

SCALE = 8
CAPTION_HEIGHT = 22
GAP = 6
ROW_LABEL_WIDTH = 44
MARK = (200, 0, 0)


def digit_image(pixels: torch.Tensor | np.ndarray, scale: int = 1) -> Image.Image:
    """A (1, 28, 28) or (28, 28) digit in [0, 1] as a greyscale image, white ink on black like MNIST."""
    array = pixels.detach().cpu().numpy() if torch.is_tensor(pixels) else np.asarray(pixels)
    image = Image.fromarray(np.round(array.reshape(28, 28) * 255).astype(np.uint8), mode="L")
    return image.resize((28 * scale, 28 * scale), Image.NEAREST) if scale > 1 else image


def perturbation_image(delta: torch.Tensor, eps: float, scale: int = SCALE) -> Image.Image:
    """Red where pixels got brighter, blue where darker, full colour at +-eps."""
    values = (delta.detach().cpu().numpy().reshape(28, 28) / max(eps, 1e-12)).clip(-1, 1)
    rgb = np.full((28, 28, 3), 255.0)
    rgb[..., 1] -= 255 * np.abs(values)
    rgb[..., 2] -= 255 * np.clip(values, 0, 1)
    rgb[..., 0] -= 255 * np.clip(-values, 0, 1)
    return Image.fromarray(rgb.astype(np.uint8), mode="RGB").resize((28 * scale, 28 * scale), Image.NEAREST)


def comparison(panels: list[tuple[Image.Image, str]]) -> Image.Image:
    """Panels side by side, each with a caption underneath."""
    width = sum(image.width for image, _ in panels) + 8 * (len(panels) - 1)
    height = max(image.height for image, _ in panels) + CAPTION_HEIGHT
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    x = 0
    for image, caption in panels:
        canvas.paste(image.convert("RGB"), (x, 0))
        draw.text((x + 2, image.height + 5), caption, fill="black")
        x += image.width + 8
    return canvas


class Tile(NamedTuple):
    """One picture of a grid with its caption; a marked tile is framed and captioned in red."""

    image: Image.Image
    caption: str
    marked: bool = False


Row = tuple[str, list[Tile | None]]  # a label and its tiles


def grid(rows: list[Row], title: str = "") -> Image.Image:
    """Labelled rows of captioned tiles, all `28 * scale` square. None leaves a cell empty so columns stay aligned."""
    size = next((tile.image.width for _, tiles in rows for tile in tiles if tile is not None), 28)
    columns = max((len(tiles) for _, tiles in rows), default=0)
    top = CAPTION_HEIGHT if title else 0
    cell_height = size + CAPTION_HEIGHT
    canvas = Image.new("RGB", (ROW_LABEL_WIDTH + columns * (size + GAP), top + len(rows) * cell_height), "white")
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((2, 5), title, fill="black")
    for r, (label, tiles) in enumerate(rows):
        y = top + r * cell_height
        draw.text((2, y + size // 2 - 5), label, fill="black")
        for c, tile in enumerate(tiles):
            if tile is None:
                continue
            x = ROW_LABEL_WIDTH + c * (size + GAP)
            canvas.paste(tile.image.convert("RGB"), (x, y))
            colour = MARK if tile.marked else "black"
            if tile.marked:
                draw.rectangle((x, y, x + size - 1, y + size - 1), outline=MARK, width=2)
            draw.text((x + 2, y + size + 5), tile.caption, fill=colour)
    return canvas


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
