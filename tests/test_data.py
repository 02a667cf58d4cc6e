"""Data sets from what is on disk, in each supported layout."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from ray_diffnas import DataError, load_dataset
from ray_diffnas.data.catalog import OWN_IMAGE_SIZE


def test_digits_are_8px_grey_with_labels(digits) -> None:
    assert digits.images.shape == (1797, 1, 8, 8) and digits.images.dtype == torch.uint8
    assert digits.image_size == OWN_IMAGE_SIZE["digits"]  # what the options check sizes with before loading
    assert digits.num_classes == 10
    batch = digits.batch(torch.arange(100))
    assert batch.min() >= -1 and batch.max() <= 1 and batch.max() == 1


@pytest.mark.slow
def test_mnist_is_padded_to_32_and_resizable_to_16() -> None:
    full = load_dataset("mnist")
    assert full.images.shape == (5000, 1, 32, 32) and full.image_size == OWN_IMAGE_SIZE["mnist"]
    assert full.images[:, :, :2].max() == 0  # the padding border
    small = load_dataset("mnist", image_size=16)
    assert small.images.shape == (5000, 1, 16, 16) and small.fingerprint() != full.fingerprint()


def _cifar_batches(folder: Path, per_batch: int = 6) -> np.ndarray:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, size=(2 * per_batch, 3072), dtype=np.uint8)
    for i in range(2):
        rows = data[i * per_batch : (i + 1) * per_batch]
        batch = {b"data": rows, b"labels": list(range(per_batch)), b"batch_label": b"training batch"}
        (folder / f"data_batch_{i + 1}").write_bytes(pickle.dumps(batch, protocol=2))
    return data


def test_cifar10_from_the_official_python_batches_layout(tmp_path: Path) -> None:
    data = _cifar_batches(tmp_path / "cifar-10-batches-py")
    loaded = load_dataset("cifar10", str(tmp_path))  # the parent folder works too
    assert loaded.images.shape == (12, 3, 32, 32) and loaded.image_size == OWN_IMAGE_SIZE["cifar10"]
    assert torch.equal(loaded.images.reshape(12, -1), torch.from_numpy(data))
    assert loaded.labels.tolist() == list(range(6)) * 2


def test_cifar10_batches_that_would_run_code_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()

    class Exploit:  # os.system, not print: a Ray session in the same process replaces builtins.print
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": Exploit()}))
    with pytest.raises(DataError, match=r"could not be read.*refusing to load (posix|os)\.system"):
        load_dataset("cifar10", str(folder))


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_cifar10_from_hugging_face_parquet_export(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    arrays = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(5)]
    table = pa.table(
        {
            "img": [{"bytes": _png(a), "path": None} for a in arrays],
            "label": [3, 1, 4, 1, 5],
        }
    )
    (tmp_path / "plain_text").mkdir()
    pq.write_table(table, tmp_path / "plain_text" / "train-00000-of-00001.parquet")
    pq.write_table(table.slice(0, 2), tmp_path / "plain_text" / "test-00000-of-00001.parquet")
    loaded = load_dataset("cifar10", str(tmp_path))
    assert loaded.images.shape == (5, 3, 32, 32)  # the train split only
    assert torch.equal(loaded.images[2].permute(1, 2, 0), torch.from_numpy(arrays[2]))
    assert loaded.labels.tolist() == [3, 1, 4, 1, 5]


def test_a_parquet_export_with_no_rows_or_a_missing_label_is_one_clear_error(tmp_path: Path) -> None:
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    table = pa.table({"img": [{"bytes": _png(image), "path": None}] * 2, "label": [3, None]})
    (tmp_path / "plain_text").mkdir()
    path = tmp_path / "plain_text" / "train-00000-of-00001.parquet"
    pq.write_table(table, path)
    with pytest.raises(DataError, match="1 image\\(s\\) in .* have no 'label'; give every image its class"):
        load_dataset("cifar10", str(tmp_path))
    pq.write_table(table.slice(0, 0), path)
    with pytest.raises(DataError, match="hold no rows; expected a folder in the official"):
        load_dataset("cifar10", str(tmp_path))


def test_image_folder_with_class_subfolders(tmp_path: Path) -> None:
    for label, name in enumerate(["cats", "dogs"]):
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.fromarray(np.full((20, 24, 3), 40 * label + i, np.uint8)).save(tmp_path / name / f"{i}.png")
    loaded = load_dataset("folder", str(tmp_path), image_size=16)
    assert loaded.images.shape == (6, 3, 16, 16)
    assert loaded.labels.tolist() == [0, 0, 0, 1, 1, 1]


def test_parquet_without_an_image_column_names_the_expected_layout(tmp_path: Path) -> None:
    pq.write_table(pa.table({"x": [1, 2]}), tmp_path / "train.parquet")
    with pytest.raises(DataError, match=r"No image column .*columns: \['x'\].*'bytes' field"):
        load_dataset("cifar10", str(tmp_path / "train.parquet"))
