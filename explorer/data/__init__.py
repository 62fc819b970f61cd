"""The images: real MNIST and Fashion-MNIST, verified by checksum and cached once as uint8 arrays; the bundled test
samples; uploads and drawings made into MNIST-style digits (`explorer.data.uploads`).

`load_split(split, dataset)` is all most code needs: datasets.py says what each dataset is, sources.py and
formats.py where its files come from and how they are read, cache.py fetches and reads the verified cache, sample.py
the 2,000 test images bundled with the app.
"""

from explorer.data.cache import check, fetch, load_arrays, load_split, to_tensor, write_cache
from explorer.data.datasets import (
    DATASETS,
    FASHION_MNIST,
    MNIST,
    SPLITS,
    Arrays,
    DataError,
    DatasetSpec,
    cache_path,
    content_digest,
    data_dir,
)
from explorer.data.sample import ASSETS, bundled_index, load_sample, make_sample, sample_path

__all__ = ["ASSETS", "DATASETS", "FASHION_MNIST", "MNIST", "SPLITS", "Arrays", "DataError", "DatasetSpec",
           "bundled_index", "cache_path", "check", "content_digest", "data_dir", "fetch", "load_arrays", "load_sample",
           "load_split", "make_sample", "sample_path", "to_tensor", "write_cache"]
