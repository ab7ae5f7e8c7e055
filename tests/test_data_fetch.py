"""`zsgm data fetch|check` and `zsgm datasets` against a local HTTP server on 127.0.0.1 serving small
archives built here: layout, sha256 refusal, resume of a cut download (HTTP Range), one CUB unpack for
both cub and cub_sent. Nothing leaves the machine."""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from zsgm.extract import fetch
from zsgm.core.errors import ZsgmError
from fixtures_images import make_cub, write_split
from zsgm.pipelines.cli import main


# ---------------------------------------------------------------- the local server
class Server:
    """Serves ``files`` (name -> bytes) with HTTP Range; ``cut[name] = n`` sends only n bytes of the next
    full response (then closes); ``no_range`` ignores Range headers. Stops at the end of the test, or
    by itself after 60 s."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.cut: dict[str, int] = {}
        self.no_range = False
        self.log: list[tuple[str, str | None]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def do_GET(self):
                name = self.path.lstrip("/")
                rng = self.headers.get("Range")
                outer.log.append((name, rng))
                if name not in outer.files:
                    self.send_error(404)
                    return
                data = outer.files[name]
                start = 0
                if rng and not outer.no_range:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if name in outer.cut and start == 0:
                    self.wfile.write(body[: outer.cut.pop(name)])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.timer = threading.Timer(60, self.httpd.shutdown)

    def __enter__(self):
        self.thread.start()
        self.timer.start()
        return self

    def __exit__(self, *exc):
        self.timer.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)

    def requested(self) -> list[str]:
        return [n for n, _ in self.log]


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setattr(fetch, "RETRY_WAIT", 0.0)
    monkeypatch.setattr(fetch, "TIMEOUT", 10.0)
    with Server() as s:
        yield s


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _tgz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def cub_archives(tmp_path) -> tuple[dict[str, bytes], object]:
    """xlsa17.zip, cvpr18xian.zip and CUB_200_2011.tgz as the official ones are laid out, built from a
    generated CUB root (6 classes with images)."""
    src = make_cub(tmp_path / "src")
    cub = src.root / "CUB"
    lists = {f"xlsa17/data/CUB/{p.name}": p.read_bytes() for p in (cub / "xlsa17_classes").iterdir()}
    xlsa = _zip({"xlsa17/data/CUB/att_splits.mat": (cub / "att_splits.mat").read_bytes(), **lists,
                 "xlsa17/data/AWA2/att_splits.mat": b"not this dataset's"})
    write_split(tmp_path / "sent.mat", src.labels, src.info["seen"], 200, 1024, src.names, n_test_seen=1764)
    cvpr = _zip({"cvpr18xian/data/CUB/sent_splits.mat": (tmp_path / "sent.mat").read_bytes(),
                 "cvpr18xian/data/FLO/att_splits.mat": b"flo"})
    tgz = _tgz({str(p.relative_to(cub)): p.read_bytes() for p in sorted((cub / "CUB_200_2011").rglob("*"))
                if p.is_file()} | {"attributes.txt": b"1 has_bill_shape::dagger\n"})
    return {"xlsa17.zip": xlsa, "cvpr18xian.zip": cvpr, "CUB_200_2011.tgz": tgz}, src


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


# ---------------------------------------------------------------- tests
def test_fetch_cub_resumes_a_cut_download_and_unpacks_the_layout(server, cub_archives, tmp_path, monkeypatch, capsys):
    files, src = cub_archives
    server.files.update(files)
    tgz = files["CUB_200_2011.tgz"]
    server.cut["CUB_200_2011.tgz"] = len(tgz) // 3           # the connection drops a third of the way
    # the real archive's published md5 cannot match this small one: the same entry with this one's md5
    monkeypatch.setitem(fetch.PARTS, "cub", [fetch.PARTS["cub"][0],
                                             fetch.Part(fetch.Archive("CUB_200_2011.tgz", ("unused",), "1 kB",
                                                                      md5=hashlib.md5(tgz).hexdigest()),
                                                        "images", ("CUB_200_2011/images.txt",))])
    root = tmp_path / "root"
    assert main(["data", "fetch", "cub", "--data-root", str(root), "--mirror", server.url, "--no-progress"]) == 0
    out = capsys.readouterr().out
    # resumed: the second request for the tgz asked for the bytes after the cut
    tgz_requests = [r for n, r in server.log if n == "CUB_200_2011.tgz"]
    assert tgz_requests == [None, f"bytes={len(tgz) // 3}-"]
    # the documented layout, which the CUB reader accepts
    assert (root / "CUB" / "att_splits.mat").read_bytes() == (src.root / "CUB" / "att_splits.mat").read_bytes()
    assert (root / "CUB" / "trainvalclasses.txt").is_file() and not (root / "AWA2").exists()
    assert (root / "CUB" / "CUB_200_2011" / "images.txt").is_file()
    jpgs = sorted((root / "CUB" / "CUB_200_2011" / "images").rglob("*.jpg"))
    assert len(jpgs) == len(src.paths)
    assert "cub: partial" in out and f"images           {len(src.paths)}/11788" in out
    # sums recorded on first fetch; the shared xlsa17.zip kept, the image archive removed
    state = json.loads((root / fetch.STATE_FILE).read_text())
    assert state["sha256"] == {"xlsa17.zip": _sha(files["xlsa17.zip"]), "CUB_200_2011.tgz": _sha(tgz)}
    assert (root / ".downloads" / "xlsa17.zip").is_file()
    assert not (root / ".downloads" / "CUB_200_2011.tgz").exists()
    assert not list((root / ".downloads").glob("*.part"))

    # cub_sent: same images, so only the sentence splits are fetched; nothing is unpacked twice
    server.log.clear()
    assert main(["data", "fetch", "cub_sent", "--data-root", str(root), "--mirror", server.url, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert server.requested() == ["cvpr18xian.zip"]
    assert (root / "CUB" / "sent_splits.mat").is_file() and not (root / "FLO").exists()
    assert "CUB_200_2011.tgz: in place" in out and "cub_sent: partial" in out


def test_a_killed_run_resumes_from_its_part_file(server, cub_archives, tmp_path):
    files, _ = cub_archives
    server.files.update(files)
    data = files["xlsa17.zip"]
    root = tmp_path / "root"
    part = root / ".downloads" / "xlsa17.zip.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(data[:1000])
    fetch.fetch("cub", root, only="splits", mirror=server.url, show=False)
    assert server.log == [("xlsa17.zip", "bytes=1000-")]
    assert (root / ".downloads" / "xlsa17.zip").read_bytes() == data
    # a server that ignores Range: the download starts over and is still right
    server.no_range, server.log[:] = True, []
    (root / "CUB" / "att_splits.mat").unlink()
    (root / ".downloads" / "xlsa17.zip").unlink()
    part.write_bytes(data[:1000])
    fetch.fetch("cub", root, only="splits", mirror=server.url, show=False)
    assert (root / ".downloads" / "xlsa17.zip").read_bytes() == data


def test_a_wrong_sha256_is_refused(server, cub_archives, tmp_path, capsys):
    files, _ = cub_archives
    server.files.update(files)
    root = tmp_path / "root"
    wrong = "0" * 64
    assert main(["data", "fetch", "cub", "--only", "splits", "--data-root", str(root), "--mirror", server.url,
                 "--sha256", f"xlsa17.zip={wrong}", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "checksum mismatch" in err and wrong in err and _sha(files["xlsa17.zip"]) in err
    assert f"--sha256 xlsa17.zip={_sha(files['xlsa17.zip'])}" in err  # what to do if the change is trusted
    assert (root / ".downloads" / "xlsa17.zip.rejected").is_file() and not (root / "CUB").exists()
    # trust on first fetch: the recorded sum refuses a file that changed afterwards
    assert main(["data", "fetch", "cub", "--only", "splits", "--data-root", str(root), "--mirror", server.url,
                 "--no-progress"]) == 0
    server.files["xlsa17.zip"] = _zip({"xlsa17/data/CUB/att_splits.mat": b"tampered"})
    with pytest.raises(ZsgmError, match=r"recorded on first fetch"):
        fetch.fetch("cub", root, only="splits", mirror=server.url, force=True, show=False)
    assert main(["data", "fetch", "cub", "--sha256", "xlsa17.zip=abc", "--data-root", str(root)]) == 2


def test_verified_sums_and_md5_are_checked(tmp_path):
    state = fetch.State(tmp_path / fetch.STATE_FILE)
    f = tmp_path / "setid.mat"
    f.write_bytes(b"not the Oxford file")
    with pytest.raises(ZsgmError, match=r"checksum mismatch: sha256 .*\(zsgm's table"):
        fetch.verify(fetch.FLO_SETID, f, state, {})
    g = tmp_path / "102flowers.tgz"
    g.write_bytes(b"not the Oxford archive")
    with pytest.raises(ZsgmError, match="md5 .*torchvision"):
        fetch.verify(fetch.FLO_TGZ, g, state, {})
    g.write_bytes(b"not the Oxford archive")  # the advice works: a --sha256 pin wins over the md5
    pin = hashlib.sha256(b"not the Oxford archive").hexdigest()
    assert fetch.verify(fetch.FLO_TGZ, g, state, {"102flowers.tgz": pin}) == pin


def test_the_table_sums_match_the_staged_oxford_files(shared_root, tmp_path):
    """The two sha256 values in the table are the staged copies' (which match torchvision's md5)."""
    state = fetch.State(tmp_path / fetch.STATE_FILE)
    for a in (fetch.FLO_LABELS, fetch.FLO_SETID):
        staged = shared_root / "FLO" / "oxford102" / a.filename
        if not staged.is_file():
            pytest.skip(f"{staged} is absent")
        copy = tmp_path / a.filename
        copy.write_bytes(staged.read_bytes())
        assert fetch.verify(a, copy, state, {}) == a.sha256


def test_a_download_that_keeps_failing_says_how_to_resume(server, tmp_path):
    server.files["xlsa17.zip"] = b"x" * 5000
    server.cut["xlsa17.zip"] = 100
    root = tmp_path / "root"
    with pytest.raises(ZsgmError, match=r"could not download xlsa17.zip \(.*404.*re-run the same command to resume"):
        fetch.fetch("cub", root, only="splits", mirror=server.url + "/missing", show=False)


def test_unsafe_member_paths_are_refused():
    part = fetch.Part(fetch.XLSA17, "splits", ("att_splits.mat",), inside="CUB")
    assert str(fetch._target("xlsa17/data/CUB/sub/a.txt", part)) == "sub/a.txt"
    assert fetch._target("xlsa17/data/AWA2/att_splits.mat", part) is None
    with pytest.raises(ZsgmError, match="unsafe"):
        fetch._target("../CUB/att_splits.mat", part)


def test_every_dataset_has_official_sources():
    from zsgm.extract.specs import DATASETS

    assert set(fetch.PARTS) == set(DATASETS)
    for name, parts in fetch.PARTS.items():
        assert parts[0].kind == "splits", name
        for p in parts:
            assert all(u.startswith(("http://", "https://")) and "127.0.0.1" not in u for u in p.archive.urls)
            # a sha256 in the table is a verified one, and says so
            assert (p.archive.sha256 is None) or "verified" in p.archive.checksum_note


# ---------------------------------------------------------------- check and datasets read the files
def test_data_check_reports_what_a_root_holds(tmp_path, capsys):
    src = make_cub(tmp_path)
    assert main(["data", "check", "cub", "--data-root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    n_tv = sum(1 for i in src.paths if i in set(src.locs["trainval_loc"].tolist()))
    assert "cub: partial" in out and f"trainval {n_tv}/7057" in out
    assert "class order      aligned with att_splits.mat" in out
    assert main(["data", "check", "--data-root", str(tmp_path), "--json"]) == 0
    rows = {r["dataset"]: r for r in map(json.loads, capsys.readouterr().out.splitlines()) if "dataset" in r}
    assert rows["cub"]["images"]["present"] == len(src.paths) and rows["awa2"]["status"] == "absent"
    assert main(["data", "check", "awa2", "--data-root", str(tmp_path)]) == 2  # named but absent
    assert "not usable" in capsys.readouterr().err


def test_data_check_finds_a_misaligned_root(tmp_path, capsys):
    src = make_cub(tmp_path)
    labels = tmp_path / "CUB" / "CUB_200_2011" / "image_class_labels.txt"
    rows = labels.read_text().splitlines()
    first = {int(r.split()[1]) for r in rows[:5]}
    assert first == {1}
    # another release's labels: class 1's images moved to class 2 (a seen/unseen mix-up)
    labels.write_text("".join(f"{r.split()[0]} {2 if r.split()[1] == '1' else r.split()[1]}\n" for r in rows))
    assert main(["data", "check", "cub", "--data-root", str(tmp_path)]) == 2
    out = capsys.readouterr().out
    assert "cub: broken" in out and "problem:" in out


def test_datasets_reads_the_files(tmp_path, monkeypatch, capsys):
    make_cub(tmp_path)
    monkeypatch.setenv("ZSGM_DATA", str(tmp_path))
    assert main(["datasets"]) == 0
    lines = {ln.split()[0]: ln for ln in capsys.readouterr().out.splitlines()}
    assert "partial:" in lines["cub"] and "/11788 images (6/200 classes)" in lines["cub"]
    assert "absent" in lines["awa2"] and "demo" in lines
    assert main(["datasets", "--names"]) == 0
    assert capsys.readouterr().out.split()[:7] == ["apy", "awa1", "awa2", "cub", "cub_sent", "flo", "sun"]
