import dataclasses
import gzip
import pickle

import numpy as np
import pytest

from explorer import data, files
from explorer.data import cache, datasets, formats, sources
from explorer.provenance import sha256_file

TEST_CLASS_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_folder(folder, arrays):
    """IDX .gz files of `arrays` under their published names; returns their SHA-256 sums."""
    folder.mkdir(parents=True, exist_ok=True)
    sums = {}
    for split in data.SPLITS:
        for kind, stem in (("images", "images-idx3-ubyte.gz"), ("labels", "labels-idx1-ubyte.gz")):
            name = f"{datasets.IDX_PREFIX[split]}-{stem}"
            (folder / name).write_bytes(gzip.compress(idx_bytes(arrays[f"{split}_{kind}"]), mtime=0))
            sums[name] = sha256_file(folder / name)
    return sums


@pytest.fixture
def small_arrays():
    images, labels, _ = data.load_sample()
    return {"train_images": images[:30], "train_labels": labels[:30],
            "test_images": images[30:40], "test_labels": labels[30:40]}


def test_full_mnist_has_the_published_sizes_and_class_counts(mnist_test):
    images, labels = mnist_test
    assert images.shape == (10_000, 28, 28) and images.dtype == np.uint8
    assert labels.dtype == np.int64
    assert np.bincount(labels).tolist() == TEST_CLASS_COUNTS
    train_images, train_labels = data.load_split("train")
    assert train_images.shape == (60_000, 28, 28)
    assert train_labels[:5].tolist() == [5, 0, 4, 1, 9] and labels[:5].tolist() == [7, 2, 1, 0, 4]


@pytest.mark.parametrize("dataset", sorted(data.DATASETS))
def test_bundled_sample_is_the_real_test_set_at_its_indices(dataset):
    images, labels = data.load_split("test", dataset)
    sample_images, sample_labels, indices = data.load_sample(dataset)
    assert len(indices) == 2000 and np.bincount(sample_labels).tolist() == [200] * 10
    np.testing.assert_array_equal(sample_images, images[indices])
    np.testing.assert_array_equal(sample_labels, labels[indices])
    np.testing.assert_array_equal(data.make_sample(dataset=dataset)["indices"], indices)


def test_idx_files_round_trip_from_a_torchvision_layout(tmp_path, small_arrays):
    root = tmp_path / "torchvision"
    sums = write_idx_folder(root / "MNIST" / "raw", small_arrays)
    spec = data.DatasetSpec("tiny", sums, (), {"train": 30, "test": 10}, data.content_digest(small_arrays))
    loaded = sources.from_local_files(root, spec)
    for key, value in small_arrays.items():
        np.testing.assert_array_equal(loaded[key], value)
    data.check(loaded, spec)


def test_idx_file_with_a_wrong_checksum_is_refused_by_name(tmp_path, small_arrays):
    write_idx_folder(tmp_path, small_arrays)
    with pytest.raises(data.DataError, match=r"train-images-idx3-ubyte\.gz has SHA-256"):
        formats.read_idx_folder(tmp_path, data.MNIST)


def test_the_pickle_reader_refuses_anything_but_numpy_arrays():
    payload = b"cos\nsystem\n(S'echo owned'\ntR."  # a classic code-running pickle
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load os\.system"):
        formats._NumpyOnlyUnpickler(__import__("io").BytesIO(payload)).load()
    with pytest.raises(data.DataError, match="SHA-256"):
        formats.read_mnist_pickle(gzip.compress(payload))


def test_a_failed_fetch_lists_every_source_and_keeps_the_cache(tmp_path, monkeypatch, small_arrays):
    monkeypatch.setenv("EXPLORER_DATA", str(tmp_path))
    data.write_cache(small_arrays, data.cache_path())
    before = data.cache_path().read_bytes()

    def offline():
        raise OSError("network is unreachable")

    monkeypatch.setattr(cache, "sources", lambda spec, local: [("local files", lambda: sources.from_local_files(
        tmp_path / "empty", spec)), ("mirror", offline)])
    with pytest.raises(data.DataError) as failure:
        data.fetch()
    message = str(failure.value)
    assert "local files: no IDX files found" in message and "mirror: network is unreachable" in message
    assert "explorer data fetch --from" in message
    assert data.cache_path().read_bytes() == before


def test_an_interrupted_cache_write_leaves_the_old_cache_whole(tmp_path, monkeypatch, small_arrays):
    target = tmp_path / "mnist.npz"
    data.write_cache(small_arrays, target)
    before = target.read_bytes()

    def interrupted(file, **arrays):
        file.write(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(cache.np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        data.write_cache(small_arrays, target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["mnist.npz"]


def test_a_corrupt_cache_says_how_to_recover(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_DATA", str(tmp_path))
    monkeypatch.setattr(cache, "_MEMORY", {})
    data.cache_path().write_bytes(b"not an npz")
    with pytest.raises(data.DataError, match="delete it and run `explorer data fetch`"):
        data.load_split("test")


def test_unknown_split_is_rejected():
    with pytest.raises(ValueError, match="split must be one of"):
        data.load_split("validation")


def test_fetch_into_a_cache_folder_that_does_not_exist_yet(tmp_path, monkeypatch, small_arrays):
    monkeypatch.setenv("EXPLORER_DATA", str(tmp_path / "new" / "deeper"))
    spec = data.DatasetSpec("mnist", {}, (), {"train": 30, "test": 10}, data.content_digest(small_arrays))
    monkeypatch.setitem(data.DATASETS, "mnist", spec)
    monkeypatch.setattr(cache, "sources", lambda spec, local: [("the sample", lambda: small_arrays)])
    assert data.fetch() == tmp_path / "new" / "deeper" / "mnist.npz"


def test_a_read_only_cache_folder_says_what_to_do(tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    monkeypatch.setenv("EXPLORER_DATA", str(locked / "explorer"))
    monkeypatch.setattr(cache.os, "access", lambda path, mode: False)  # root ignores permission bits
    with pytest.raises(data.DataError, match="not writable: set EXPLORER_DATA"):
        data.fetch()


KILLED_FETCH = """
import os, sys, time
import numpy as np
from explorer import data
from explorer.data import cache
images, labels, _ = data.load_sample()
arrays = {"train_images": images[:30], "train_labels": labels[:30],
          "test_images": images[30:40], "test_labels": labels[30:40]}
data.DATASETS["mnist"] = data.DatasetSpec("mnist", {}, (), {"train": 30, "test": 10}, data.content_digest(arrays))
cache.sources = lambda spec, local: [("the sample", lambda: arrays)]

def stalls_halfway(file, **arrays):
    file.write(b"PK half an npz")
    file.flush()
    print("writing", flush=True)
    time.sleep(600)

cache.np.savez = stalls_halfway
data.fetch()
"""


def test_a_fetch_killed_while_writing_leaves_the_cache_whole_and_the_next_fetch_starts_clean(tmp_path, monkeypatch,
                                                                                           small_arrays):
    import subprocess
    import sys

    monkeypatch.setenv("EXPLORER_DATA", str(tmp_path))
    monkeypatch.setattr(cache, "_MEMORY", {})
    older = {key: value[::-1].copy() for key, value in small_arrays.items()}  # an earlier, different cache
    data.write_cache(older, data.cache_path())
    before = data.cache_path().read_bytes()
    fetch = subprocess.Popen([sys.executable, "-c", KILLED_FETCH], stdout=subprocess.PIPE, text=True)
    assert fetch.stdout.readline().strip() == "writing"
    fetch.kill()  # SIGKILL: no clean-up code runs
    fetch.wait(timeout=30)
    assert data.cache_path().read_bytes() == before  # never touched
    assert files.temporary_beside(data.cache_path()).exists()  # the killed fetch's half-written file

    spec = data.DatasetSpec("mnist", {}, (), {"train": 30, "test": 10}, data.content_digest(small_arrays))
    monkeypatch.setitem(data.DATASETS, "mnist", spec)
    monkeypatch.setattr(cache, "sources", lambda spec, local: [("the sample", lambda: small_arrays)])
    data.fetch(log=lambda message: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnist.npz"]  # clean: the stale half-file is gone
    with np.load(data.cache_path()) as cached:
        np.testing.assert_array_equal(cached["test_images"], small_arrays["test_images"])


FASHION = data.DATASETS["fashion-mnist"]
needs_debian_fashion = pytest.mark.skipif(not FASHION.system_folder.is_dir(),
                                          reason="apt-get install dataset-fashion-mnist (.ci/run does)")


@needs_debian_fashion
def test_fashion_mnist_comes_verified_from_debians_package(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_DATA", str(tmp_path))
    monkeypatch.setattr(cache, "_MEMORY", {})
    messages = []
    data.fetch("fashion-mnist", log=messages.append)
    assert "fetched from the system package's files" in messages[-1]
    arrays = data.load_arrays("fashion-mnist")
    assert arrays["train_images"].shape == (60_000, 28, 28) and arrays["test_images"].shape == (10_000, 28, 28)
    assert np.bincount(arrays["test_labels"]).tolist() == [1_000] * 10
    assert FASHION.class_names[int(arrays["test_labels"][0])] == "Ankle boot"  # the published first test item


@needs_debian_fashion
def test_a_damaged_fashion_mnist_file_is_refused_and_the_message_says_how_to_get_it(tmp_path, monkeypatch):
    import shutil

    monkeypatch.setenv("EXPLORER_DATA", str(tmp_path / "cache"))
    copies = tmp_path / "copies"
    shutil.copytree(FASHION.system_folder, copies)
    (copies / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b damaged in transit")
    monkeypatch.setitem(data.DATASETS, "fashion-mnist", dataclasses.replace(FASHION, system_folder=copies))
    with pytest.raises(data.DataError) as error:
        data.fetch("fashion-mnist", log=lambda message: None)
    assert "t10k-labels-idx1-ubyte.gz has SHA-256" in str(error.value)
    assert "apt-get install dataset-fashion-mnist" in str(error.value)
    assert not data.cache_path("fashion-mnist").exists()


def test_a_bundled_digit_is_recognised_by_its_pixels_and_an_upload_is_not():
    images, _, indices = data.load_sample()
    assert data.bundled_index(images[123] / np.float32(255)) == int(indices[123])
    changed = images[123] / np.float32(255)
    changed[14, 14] = 1 - changed[14, 14]  # one pixel off: a picture of its own
    assert data.bundled_index(changed) is None
