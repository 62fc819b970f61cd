"""Pictures of digits: the PNGs the CLI writes and the app offers for download."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image, ImageDraw

SCALE = 8
CAPTION_HEIGHT = 22


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


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
