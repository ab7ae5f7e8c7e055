"""``zsgm data fetch``: the official archives of each benchmark, checked, resumable, unpacked into the
layout the raw-image readers expect (``data/README.md``).

Checksums, honestly: none of these hosts publishes a sha256. An archive's ``sha256`` here is set
only where it was verified (a file whose published md5 matched a copy on the development
machine); ``md5`` is set where a widely used loader publishes one (torchvision for Oxford-102 and
VOC2008; the CUB loaders of many codebases). An archive without a known sha256 is checked against
its md5 where there is one, and its sha256 is recorded on the first fetch in
``<data root>/.zsgm-fetch.json``: every later fetch (a re-download, another machine sharing the
root) is checked against it, and ``--sha256 FILE=HEX`` pins one. A mismatch is refused, and the
file kept aside as ``<file>.rejected``.

Downloads go to ``<data root>/.downloads/<file>.part`` and resume with an HTTP Range request,
both after a cut connection (retried in the same run) and after a killed run (the next run
continues the ``.part`` file). An archive whose files are already in place (its sentinel paths
exist) is neither downloaded nor unpacked again: ``cub`` and ``cub_sent`` share ``CUB/``, so the
CUB images are fetched and unpacked once for both.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from zsgm.core.errors import ZsgmError
from zsgm.core.files import atomic_write_json, sha256_file
from zsgm.core.logs import log
from zsgm.core.project import data_root
from zsgm.extract.specs import get_spec

STATE_FILE = ".zsgm-fetch.json"
DOWNLOADS = ".downloads"
CHUNK = 1 << 20
RETRIES = 5
RETRY_WAIT = 3.0          # seconds before a resumed attempt (doubles each time)
TIMEOUT = 60.0


@dataclass(frozen=True)
class Archive:
    """One file an official host serves."""
    filename: str
    urls: tuple[str, ...]            # the official address first, then known mirrors of the same file
    size: str                        # approximate, for the user
    sha256: str | None = None        # verified sum, or None: recorded on first fetch
    md5: str | None = None           # a published md5, checked where given
    checksum_note: str = "no published checksum; sha256 recorded on first fetch"
    shared: bool = False             # serves several datasets: kept after unpacking


XLSA17 = Archive("xlsa17.zip", ("http://datasets.d2.mpi-inf.mpg.de/xian/xlsa17.zip",), "0.9 GB",
                 checksum_note="MPI-INF publishes no checksum; sha256 recorded on first fetch", shared=True)
CVPR18 = Archive("cvpr18xian.zip", ("http://datasets.d2.mpi-inf.mpg.de/xian/cvpr18xian.zip",), "0.2 GB",
                 checksum_note="MPI-INF publishes no checksum; sha256 recorded on first fetch", shared=True)
CUB_TGZ = Archive("CUB_200_2011.tgz", ("https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz",),
                  "1.1 GB", md5="97eceeb196236b17998738112f37df78",
                  checksum_note="md5 as published by common CUB loaders (e.g. avalanche), not checked here; "
                                "sha256 recorded on first fetch")
FLO_TGZ = Archive("102flowers.tgz", ("https://www.robots.ox.ac.uk/~vgg/data/flowers/102/102flowers.tgz",), "0.3 GB",
                  md5="52808999861908f626f3c1f4e79d11fa",
                  checksum_note="md5 as published by torchvision (Flowers102); sha256 recorded on first fetch")
# These two were verified: copies on the development machine match torchvision's published md5.
FLO_LABELS = Archive("imagelabels.mat", ("https://www.robots.ox.ac.uk/~vgg/data/flowers/102/imagelabels.mat",),
                     "0.5 kB", sha256="4903e94206bac23bf772aadf06451916df56b58fc483a62db32a97b82656651d",
                     md5="e0620be6f572b9609742df49c70aed4d",
                     checksum_note="sha256 verified (a copy matching torchvision's published md5)")
FLO_SETID = Archive("setid.mat", ("https://www.robots.ox.ac.uk/~vgg/data/flowers/102/setid.mat",), "15 kB",
                    sha256="46b8678f91fd95d3c8f4feab80d271a6c834a1dd896fe29fd3e6ad9ce5c8dccd",
                    md5="a5357ecc9cb78c4bef273ce3793fc85c",
                    checksum_note="sha256 verified (a copy matching torchvision's published md5)")
AWA2_ZIP = Archive("AwA2-data.zip", ("https://cvml.ist.ac.at/AwA2/AwA2-data.zip",), "13 GB")
SUN_TGZ = Archive("SUNAttributeDB_Images.tar.gz",
                  ("http://cs.brown.edu/~gmpatter/Attributes/SUNAttributeDB_Images.tar.gz",), "16 GB")
APY_ANN = Archive("attribute_data.tar.gz", ("http://vision.cs.uiuc.edu/attributes/attribute_data.tar.gz",), "3 MB")
APY_YAHOO = Archive("ayahoo_test_images.tar.gz",
                    ("http://vision.cs.uiuc.edu/attributes/ayahoo_test_images.tar.gz",), "0.1 GB")
VOC2008 = Archive("VOCtrainval_14-Jul-2008.tar",
                  ("http://host.robots.ox.ac.uk/pascal/VOC/voc2008/VOCtrainval_14-Jul-2008.tar",
                   "https://thor.robots.ox.ac.uk/pascal/VOC/voc2008/VOCtrainval_14-Jul-2008.tar"), "0.6 GB",
                  md5="2629fa636546599198acfcfbfcf1904a",
                  checksum_note="md5 as published by torchvision (VOCSegmentation 2008); sha256 recorded on first fetch")


@dataclass(frozen=True)
class Part:
    """What one archive contributes to one dataset folder.

    ``inside``: take only members below a path component of this name (e.g. ``CUB`` in
    ``xlsa17/data/CUB/att_splits.mat``), stripped; ``None`` takes every member as it is.
    ``files``: only these file names (after stripping). ``sentinels``: paths (relative to the
    dataset folder) whose presence means the part is in place.
    """
    archive: Archive
    kind: str                          # splits | images | labels
    sentinels: tuple[str, ...]
    inside: str | None = None
    files: tuple[str, ...] = ()
    plain: bool = False                # not an archive: the file itself goes into the folder


def _xlsa17(ds: str) -> Part:
    return Part(XLSA17, "splits", ("att_splits.mat",), inside=ds)


PARTS: dict[str, list[Part]] = {
    "apy": [_xlsa17("APY"),
            Part(APY_ANN, "images", ("attribute_data/apascal_train.txt",)),
            Part(APY_YAHOO, "images", ("ayahoo_test_images",)),
            Part(VOC2008, "images", ("VOCdevkit/VOC2008/JPEGImages",))],
    "awa1": [_xlsa17("AWA1")],
    "awa2": [_xlsa17("AWA2"), Part(AWA2_ZIP, "images", ("Animals_with_Attributes2/JPEGImages",))],
    "cub": [_xlsa17("CUB"), Part(CUB_TGZ, "images", ("CUB_200_2011/images.txt", "CUB_200_2011/images"))],
    "cub_sent": [_xlsa17("CUB"), Part(CVPR18, "splits", ("sent_splits.mat",), inside="CUB", files=("sent_splits.mat",)),
                 Part(CUB_TGZ, "images", ("CUB_200_2011/images.txt", "CUB_200_2011/images"))],
    "flo": [Part(CVPR18, "splits", ("att_splits.mat",), inside="FLO"),
            Part(FLO_TGZ, "images", ("jpg/image_08189.jpg",)),
            Part(FLO_LABELS, "labels", ("imagelabels.mat",), plain=True),
            Part(FLO_SETID, "labels", ("setid.mat",), plain=True)],
    "sun": [_xlsa17("SUN"), Part(SUN_TGZ, "images", ("images",))],
}
NOTES = {"awa1": "AwA1's raw images are not distributed (copyright); its xlsa17 res101.mat features are",
         "flo": "FLO's splits and sentence embeddings come from Xian et al. CVPR 2018 (cvpr18xian.zip)"}


# ---------------------------------------------------------------- state (recorded sums, what was unpacked)
@dataclass
class State:
    path: Path
    data: dict = field(default_factory=dict)

    @classmethod
    def load(cls, root: Path) -> "State":
        p = root / STATE_FILE
        try:
            return cls(p, json.loads(p.read_text()) if p.is_file() else {})
        except ValueError as exc:
            raise ZsgmError(f"{p}: not valid JSON ({exc}); fix or delete it (it records the sha256 of the "
                            f"archives fetched)") from exc

    def sums(self) -> dict:
        return self.data.setdefault("sha256", {})

    def save(self) -> None:
        atomic_write_json(self.path, self.data)


# ---------------------------------------------------------------- download with resume
def _progress(total: int | None, start: int, name: str, show: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024, desc=name,
                disable=not show, leave=False)


def _attempt(url: str, part: Path, show: bool) -> bool:
    """One request: append to ``part`` (from its size, by HTTP Range). True when the file is complete."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "zsgm-data-fetch"}
    if have:
        headers["Range"] = f"bytes={have}-"
    req = urllib.request.Request(url, headers=headers)
    try:
        resp = urllib.request.urlopen(req, timeout=TIMEOUT)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: the .part file is complete (the checksum decides)
            return True
        raise
    with resp:
        if have and resp.status == 206:
            rng = resp.headers.get("Content-Range", "")
            if not rng.startswith(f"bytes {have}-"):
                raise ZsgmError(f"{url}: the server answered range {rng!r} to a request from byte {have}")
            mode, start = "ab", have
            log.info("resuming %s at %.1f MiB", part.name[:-5], have / 2 ** 20)
        else:
            if have:
                log.info("%s: the server does not resume (HTTP %d); starting over", url, resp.status)
            mode, start = "wb", 0
        length = resp.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        with open(part, mode) as fh, _progress(total, start, part.name[:-5], show) as bar:
            while True:
                try:
                    chunk = resp.read(CHUNK)
                except (http.client.IncompleteRead, OSError) as exc:
                    log.info("%s: connection cut (%s)", url, type(exc).__name__)
                    return False
                if not chunk:
                    break
                fh.write(chunk)
                bar.update(len(chunk))
    size = part.stat().st_size
    return total is None or size == total


def download(archive: Archive, dest: Path, urls: tuple[str, ...] | None = None, show: bool = True) -> Path:
    """``dest`` complete, downloaded through ``dest.part``; a cut transfer resumes where it stopped."""
    urls = urls or archive.urls
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    wait, last = RETRY_WAIT, ""
    for attempt in range(RETRIES):
        for url in urls:
            try:
                if _attempt(url, part, show):
                    os.replace(part, dest)
                    return dest
                last = f"{url}: transfer cut at {part.stat().st_size} bytes"
                break  # the same host again, from where it stopped
            except ZsgmError:
                raise
            except urllib.error.HTTPError as exc:
                last = f"{url}: HTTP {exc.code} {exc.reason}"
                if 400 <= exc.code < 500 and exc.code not in (408, 429):
                    continue  # this address will not serve it: try the next one
            except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
                last = f"{url}: {type(exc).__name__}: {getattr(exc, 'reason', exc)}"
        if attempt + 1 < RETRIES:
            log.info("%s; retrying in %.0f s", last, wait)
            time.sleep(wait)
            wait *= 2
    got = part.stat().st_size if part.exists() else 0
    raise ZsgmError(f"could not download {archive.filename} ({last}); {got} bytes are kept in {part}: re-run the "
                    f"same command to resume, or put the file at {dest} yourself (it is checked all the same)")


# ---------------------------------------------------------------- checksums
def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def verify(archive: Archive, path: Path, state: State, pins: dict[str, str]) -> str:
    """The file's sha256, checked against a pin, the table or the sum recorded on first fetch (and the md5)."""
    got = sha256_file(path)
    recorded = state.sums().get(archive.filename)
    expected, source = next(((s, src) for s, src in ((pins.get(archive.filename), "--sha256"),
                                                      (archive.sha256, "zsgm's table (verified)"),
                                                      (recorded, f"recorded on first fetch in {state.path}"))
                             if s), (None, ""))
    problem = None
    if expected and got != expected.lower():
        problem = f"sha256 {got}, expected {expected} ({source})"
    elif archive.md5 and archive.filename not in pins and _md5(path) != archive.md5:  # a pin wins over an md5
        problem = f"md5 {_md5(path)}, expected {archive.md5} ({archive.checksum_note})"
    if problem:
        bad = path.with_name(path.name + ".rejected")
        os.replace(path, bad)
        raise ZsgmError(f"{archive.filename}: checksum mismatch: {problem}. The download is corrupt or the file "
                        f"changed upstream; it was moved to {bad}. Re-run to download it again; if the host "
                        f"really changed the file and you trust it, pass --sha256 {archive.filename}={got}")
    if not expected:
        log.warning("%s: sha256 %s (%s); recorded in %s, later fetches are checked against it",
                    archive.filename, got, archive.checksum_note, state.path)
    state.sums()[archive.filename] = got
    state.save()
    return got


# ---------------------------------------------------------------- unpacking
def _target(name: str, part: Part) -> PurePosixPath | None:
    """Where member ``name`` goes, relative to the dataset folder; None to skip it."""
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts:
        raise ZsgmError(f"{part.archive.filename}: unsafe member path {name!r}; refusing to unpack")
    parts = [x for x in p.parts if x not in ("", ".")]
    if part.inside is not None:
        if part.inside not in parts[:-1]:
            return None
        parts = parts[parts.index(part.inside) + 1:]
    if not parts or parts[0] == "__MACOSX":
        return None
    if part.files and parts[-1] not in part.files:
        return None
    return PurePosixPath(*parts)


def unpack(path: Path, part: Part, folder: Path) -> int:
    """Members of the archive at ``path`` into ``folder`` (the dataset's folder); returns how many files."""
    folder.mkdir(parents=True, exist_ok=True)
    if part.plain:
        shutil.copyfile(path, folder / part.archive.filename)
        return 1
    n = 0
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                rel = _target(info.filename, part)
                if rel is None or info.is_dir():
                    continue
                out = folder / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, CHUNK)
                n += 1
    elif tarfile.is_tarfile(path):
        with tarfile.open(path) as tf:
            for member in tf:
                rel = _target(member.name, part)
                if rel is None or not (member.isfile() or member.isdir()):
                    continue
                if member.isdir():
                    (folder / rel).mkdir(parents=True, exist_ok=True)
                    continue
                member.name = str(rel)
                tf.extract(member, folder, filter="data")  # no absolute paths, links or devices
                n += 1
    else:
        raise ZsgmError(f"{path}: neither a zip nor a tar archive; delete it and re-run")
    if n == 0:
        want = f"{', '.join(part.files)} under {part.inside}/" if part.files else f"files under {part.inside}/"
        raise ZsgmError(f"{path.name} holds no {want}; is it the right archive?")
    return n


# ---------------------------------------------------------------- one dataset
@dataclass
class FetchReport:
    dataset: str
    folder: Path
    lines: list[str] = field(default_factory=list)


def _in_place(part: Part, folder: Path) -> bool:
    return all((folder / s).exists() for s in part.sentinels)


def fetch(name: str, root: str | Path | None = None, only: str | None = None, mirror: str | None = None,
          pins: dict[str, str] | None = None, keep_archives: bool = False, force: bool = False,
          show: bool = True) -> FetchReport:
    """Download, check and unpack what ``name`` needs under ``root``; parts already in place are skipped."""
    spec = get_spec(name)
    root = data_root(root)
    root.mkdir(parents=True, exist_ok=True)
    folder = spec.folder_path(root)
    state = State.load(root)
    pins = pins or {}
    report = FetchReport(spec.name, folder)
    for part in PARTS[spec.name]:
        a = part.archive
        if only and part.kind != only and not (only == "images" and part.kind == "labels"):
            continue
        if _in_place(part, folder) and not force:
            report.lines.append(f"{a.filename}: in place ({', '.join(part.sentinels)} under {folder}); "
                                f"--force fetches it again")
            continue
        dest = root / DOWNLOADS / a.filename
        urls = (mirror.rstrip("/") + "/" + a.filename,) if mirror else a.urls
        reused = dest.is_file() and not force
        if not reused:
            log.info("fetching %s (%s) from %s", a.filename, a.size, urls[0])
            download(a, dest, urls, show)
        digest = verify(a, dest, state, pins)
        n = unpack(dest, part, folder)
        state.data.setdefault("unpacked", {})[f"{a.filename} -> {spec.folder}"] = {
            "sha256": digest, "files": n, "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        state.save()
        if not (keep_archives or a.shared or part.plain):
            dest.unlink()
        report.lines.append(f"{a.filename}: {'already downloaded' if reused else 'downloaded'}, sha256 "
                            f"{digest[:16]}... ({a.checksum_note if not (a.sha256 or a.filename in pins) else 'verified'}), "
                            f"{n} file(s) into {folder}")
    if name in NOTES:
        report.lines.append(NOTES[name])
    return report


def parse_pins(values: list[str] | None) -> dict[str, str]:
    out = {}
    for v in values or []:
        fname, sep, digest = v.partition("=")
        digest = digest.strip().lower()
        if not sep or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ZsgmError(f"--sha256 {v}: expected FILE=HEX with a 64-digit sha256 (e.g. xlsa17.zip=...)")
        out[fname.strip()] = digest
    return out
