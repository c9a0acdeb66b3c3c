"""One :class:`DatasetSpec` per dataset: how to read it, where to get it, how to tell it is there.

:data:`DATASETS` is the registry of dataset names: the five datasets read from folders in their
original layouts (``pbc``, ``nih``, ``covid``, ``mias``, ``cbis_ddsm``; ``nih_64px``, a 64-px part of
``nih`` labelled by its lists) and every 2D MedMNIST flag
(``pneumoniamnist``, ``bloodmnist``, ...; one ``.npz`` each). A spec holds all that is particular
to its dataset, so that :mod:`helpers.data.registry` walks one order for all of them:

1. its *home* folder under ``$MEDVIT_DATA`` (``<root>/<name>``, MedMNIST ``<root>/medmnist``);
2. the same home under ``<cache_dir>/downloads``, where an earlier automatic download went;
3. a new download, for the specs that have a :attr:`~DatasetSpec.downloader` (small, free data);
4. the synthetic stand-in, written in the dataset's own layout.

The first two steps are queries (:meth:`DatasetSpec.locate`); only the last two write anything.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from .. import config
from ..cards import TASK_KINDS
from .chestxray import read_covid, read_nih, read_nih_64px
from .download import download_covid, download_medmnist, download_mias
from .mammography import read_cbis_ddsm, read_mias
from .medmnist import medmnist_file, medmnist_info, medmnist_names, read_medmnist_npz
from .mias_tasks import read_mias_abnormal, read_mias_lesions
from .pbc import read_pbc
from .synthetic import write_synthetic

__all__ = ["DATASET_KINDS", "DatasetSpec", "DATASETS", "FOLDER_DATASETS", "TASK_DATASETS", "get_spec", "instructions"]

#: How a dataset is stored: a folder a layout reader turns into a catalog, or one MedMNIST ``.npz``.
DATASET_KINDS = ("folder", "medmnist")


@dataclass(frozen=True)
class DatasetSpec:
    """Everything particular to one dataset that the registry needs.

    Attributes:
        name: registry name (``load_dataset(name)``).
        kind: ``"folder"`` (``reader(folder) -> Catalog``) or ``"medmnist"`` (``reader`` is
            :func:`~helpers.data.medmnist.read_medmnist_npz`, one split at a time).
        task: the task kind of its labels, one of :data:`helpers.cards.TASK_KINDS`.
        title: what it is, in a few words, with its size.
        url: where it is published.
        licence: its licence, in words.
        citation: its bibtex key in ``book/references.bib``.
        layout: how a copy is laid out under ``$MEDVIT_DATA`` (what to unpack where).
        reader: the layout reader (see ``kind``).
        reader_options: keyword options of ``reader`` that :func:`~helpers.data.load_dataset`
            passes on (CBIS-DDSM: ``label``).
        downloader: ``downloader(dest) -> Path`` fetches the data into ``dest`` (its home in the
            downloads folder) and returns what :meth:`locate` would; ``None`` for data fetched by hand.
        marker: for a downloaded folder, the file (relative to the home) whose presence shows the
            download is complete.
        checksum: how a download is checked, in words.
        folder: the home folder when it is another dataset's (a task cut from that dataset's
            files, as ``mias_lesions`` from ``mias``); ``None``: the name.
    """

    name: str
    kind: str
    task: str
    title: str
    url: str
    licence: str
    citation: str
    layout: str
    reader: Callable[..., Any]
    reader_options: tuple[str, ...] = ()
    downloader: Callable[[Path], Path] | None = None
    marker: str | None = None
    checksum: str = ""
    folder: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in DATASET_KINDS:
            raise ValueError(f"{self.name}: kind must be one of {DATASET_KINDS}, got {self.kind!r}")
        if self.task not in TASK_KINDS:
            raise ValueError(f"{self.name}: task must be one of {TASK_KINDS}, got {self.task!r}")
        if self.downloader is not None and self.kind == "folder" and self.marker is None:
            raise ValueError(f"{self.name}: a downloadable folder dataset needs a marker file")

    @property
    def home(self) -> str:
        """The folder name under ``$MEDVIT_DATA`` and under the downloads folder."""
        return "medmnist" if self.kind == "medmnist" else (self.folder or self.name)

    @property
    def auto(self) -> bool:
        """Whether the registry may download it (small and free)."""
        return self.downloader is not None

    def locate(self, home: Path, size: int | None = None, *, downloaded: bool = False) -> Path | None:
        """What to read when the dataset is present in ``home``, else ``None``; reads nothing, writes nothing.

        Args:
            home: the dataset's home folder under a root (``$MEDVIT_DATA`` or the downloads folder).
            size: MedMNIST: the side needed: a copy under ``$MEDVIT_DATA`` gives its smallest file
                at least that large (MedMNIST+ ``<flag>_<side>.npz``), a download only that side.
            downloaded: ``home`` is an automatic download, trusted only when its :attr:`marker`
                exists. A folder put under ``$MEDVIT_DATA`` by hand counts as present as soon as it
                exists, so that its reader can say what is missing in it.
        """
        if self.kind == "medmnist":  # a download counts at the side asked for; a copy at any side
            return medmnist_file(home, self.name, size, exact=downloaded)
        if downloaded:
            return home if self.marker is not None and (home / self.marker).exists() else None
        return home if home.is_dir() else None

    def missing(self, root: Path) -> str:
        """What ``root`` lacks when the dataset is not there, for messages (``no folder <root>/pbc``)."""
        if self.kind == "medmnist":
            return f"no {config.shown_path(root / self.home / (self.name + '.npz'))}"
        return f"no folder {config.shown_path(root / self.home)}"

    def stand_in(self) -> Path:
        """Write (once) the synthetic stand-in in the dataset's layout; returns what :meth:`locate` would."""
        if self.kind == "medmnist":
            return write_synthetic(self.name, flag=self.name) / f"{self.name}.npz"
        return write_synthetic(self.home)

    def instructions(self) -> str:
        """How to get the dataset by hand, in one paragraph."""
        return f"{self.title}: download from {self.url}; {self.layout}. Licence: {self.licence}."

    def replace(self, **changes: Any) -> DatasetSpec:
        """A copy with some fields changed (tests swap the downloader so)."""
        return dataclasses.replace(self, **changes)


def _medmnist_spec(flag: str) -> DatasetSpec:
    task, _, _ = medmnist_info(flag)
    return DatasetSpec(
        name=flag,
        kind="medmnist",
        task=task,
        title=f"{flag} (MedMNIST v2, one .npz with the official split)",
        url=f"https://zenodo.org/records/10519652 ({flag}.npz; MedMNIST+ {flag}_64/_128/_224.npz)",
        licence="CC BY 4.0",
        citation="yang2023medmnist",
        layout=f"put {flag}.npz (or {flag}_<side>.npz) in $MEDVIT_DATA/medmnist/",
        reader=read_medmnist_npz,
        downloader=partial(download_medmnist, flag),
        checksum="MD5 checked",
    )


#: The datasets read from folders in their original layouts.
FOLDER_DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="pbc",
            kind="folder",
            task="multiclass",
            title="PBC normal peripheral blood cells (17,092 JPEGs, 268 MB; no checksummed direct URL, so not "
            "downloaded: BloodMNIST holds the same images re-cut)",
            url="https://data.mendeley.com/datasets/snkd93bnjr/1 (file PBC_dataset_normal_DIB.zip)",
            licence="CC BY 4.0",
            citation="acevedo2020dataset",
            layout="unzip so that $MEDVIT_DATA/pbc/PBC_dataset_normal_DIB/<class>/*.jpg exists",
            reader=read_pbc,
        ),
        DatasetSpec(
            name="nih",
            kind="folder",
            task="multilabel",
            title="NIH ChestX-ray14 (112,120 PNGs, 42 GB in 12 archives)",
            url="https://nihcc.app.box.com/v/ChestXray-NIHCC (images_001.tar.gz ... images_012.tar.gz, "
            "Data_Entry_2017.csv, train_val_list.txt, test_list.txt)",
            licence="public, cite Wang et al. 2017",
            citation="wang2017chestx",
            layout="put Data_Entry_2017.csv and the lists in $MEDVIT_DATA/nih/ and extract the archives there "
            "(images_0NN/images/*.png or images/*.png)",
            reader=read_nih,
        ),
        DatasetSpec(
            name="nih_64px",
            kind="folder",
            task="multilabel",
            title="ChestX-ray14 at 64 px (a third party's downscaled copy of part of it, original file names)",
            url="https://nihcc.app.box.com/v/ChestXray-NIHCC (the originals; labels from the nih/ folder's lists)",
            licence="public, cite Wang et al. 2017",
            citation="wang2017chestx",
            layout="put the PNGs in $MEDVIT_DATA/nih_64px/images/ and the CheXNet lists (labels/*_list.txt) "
            "or Data_Entry_2017.csv in $MEDVIT_DATA/nih/ (or in nih_64px/ itself)",
            reader=read_nih_64px,
        ),
        DatasetSpec(
            name="covid",
            kind="folder",
            task="multilabel",
            title="COVID-19 image data collection (ieee8023)",
            url="https://github.com/ieee8023/covid-chestxray-dataset (metadata.csv + images/)",
            licence="per image (metadata.csv 'license' column)",
            citation="cohen2020covid",
            layout="clone or unzip so that $MEDVIT_DATA/covid/metadata.csv and $MEDVIT_DATA/covid/images/ exist",
            reader=read_covid,
            downloader=download_covid,
            marker="metadata.csv",
            checksum="no checksum is published; SHA-256 recorded",
        ),
        DatasetSpec(
            name="mias",
            kind="folder",
            task="multiclass",
            title="mini-MIAS (322 PGMs, 1024x1024)",
            url="http://peipa.essex.ac.uk/pix/mias/all-mias.tar.gz",
            licence="research use only (Licence.txt)",
            citation="suckling1994mias",
            layout="unpack so that $MEDVIT_DATA/mias/all-mias/Info.txt and the mdbNNN.pgm files exist",
            reader=read_mias,
            downloader=download_mias,
            marker="all-mias/Info.txt",
            checksum="no checksum is published; SHA-256 recorded",
        ),
        DatasetSpec(
            name="cbis_ddsm",
            kind="folder",
            task="binary",
            title="CBIS-DDSM, JPEG version (6 GB) or DICOM (163 GB)",
            url="https://www.kaggle.com/datasets/awsaf49/cbis-ddsm-breast-cancer-image-dataset or "
            "https://www.cancerimagingarchive.net/collection/cbis-ddsm/",
            licence="CC BY 3.0 (TCIA)",
            citation="lee2017curated",
            layout="unzip the Kaggle archive so that $MEDVIT_DATA/cbis_ddsm/csv/dicom_info.csv and "
            "$MEDVIT_DATA/cbis_ddsm/jpeg/ exist",
            reader=read_cbis_ddsm,
            reader_options=("label",),
        ),
    )
}

#: Tasks cut from a folder dataset's files (the mammography chapter's two mini-MIAS tasks): same home,
#: download and stand-in as the dataset, their own reader (:mod:`helpers.data.mias_tasks`).
TASK_DATASETS: dict[str, DatasetSpec] = {
    "mias_lesions": FOLDER_DATASETS["mias"].replace(
        name="mias_lesions",
        task="binary",
        title="mini-MIAS lesion crops, benign vs malignant (one square crop per annotated lesion)",
        reader=read_mias_lesions,
        folder="mias",
    ),
    "mias_abnormal": FOLDER_DATASETS["mias"].replace(
        name="mias_abnormal",
        task="binary",
        title="mini-MIAS whole films, normal vs abnormal (benign or malignant finding)",
        reader=read_mias_abnormal,
        folder="mias",
    ),
}

#: Every dataset name the registry knows, with its spec: the folder datasets, their tasks, then the MedMNIST flags.
DATASETS: dict[str, DatasetSpec] = {
    **FOLDER_DATASETS,
    **TASK_DATASETS,
    **{flag: _medmnist_spec(flag) for flag in medmnist_names()},
}


def get_spec(name: str) -> DatasetSpec:
    """The spec of ``name``.

    Raises:
        KeyError: for a name the registry does not know (the message lists the known ones).
    """
    spec = DATASETS.get(name)
    if spec is None:
        medmnist = [n for n, s in DATASETS.items() if s.kind == "medmnist"]
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(FOLDER_DATASETS)} and MedMNIST {medmnist}")
    return spec


def instructions(name: str) -> str:
    """How to get ``name`` by hand, in one paragraph (an unknown name gets a sentence saying so)."""
    spec = DATASETS.get(name)
    return spec.instructions() if spec is not None else f"no download information for {name!r}"
