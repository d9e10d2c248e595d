"""Files from outside: a ZIP bomb is refused and reported while the rest of the run is ingested;
uploads are written atomically; an upload while another job holds the knowledge base says so."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from assistant.database import session_scope
from assistant.database.models import Document
from assistant.retrieval.vector_index import kb_index_dir
from ingest.loaders import LoaderError, load_file
from ingest.loaders.archive import check_unzipped_size
from ingest.locking import kb_lock
from ingest.pipeline import Ingestor
from tests.conftest import REPO
from tests.helpers import make_docx

import pytest

ZEROS_MB = 64


def make_zip_bomb(path: Path) -> Path:
    """A real DOCX (it opens in Word) with one extra member of ``ZEROS_MB`` MB of zeros, compressed to a few KB."""
    make_docx(path.with_suffix(".plain.docx"), "Returns", {"Window": ["Returns are accepted within 30 days."]})
    with zipfile.ZipFile(path.with_suffix(".plain.docx")) as source, \
            zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as bomb:
        for member in source.infolist():
            bomb.writestr(member, source.read(member))
        with bomb.open("word/media/zeros.bin", "w", force_zip64=True) as stream:
            block = bytes(1 << 20)
            for _ in range(ZEROS_MB):
                stream.write(block)
    path.with_suffix(".plain.docx").unlink()
    return path


def test_a_zip_bomb_docx_is_refused_and_the_rest_of_the_run_is_ingested(settings, embedder, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    bomb = make_zip_bomb(folder / "bomb.docx")
    assert bomb.stat().st_size < 1024 * 1024  # small on disk: HELPMATE_MAX_FILE_MB alone would let it in
    make_docx(folder / "shipping.docx", "Shipping", {"Express": ["Express shipping costs 14.90 EUR."]})
    (folder / "hours.md").write_text("# Opening hours\n\nThe Munich store is open Monday to Saturday, 9:00 to 19:00.\n")
    limited = settings.model_copy(update={"max_unzipped_mb": 16.0})

    summary = Ingestor("help", limited, embedder, show_progress=False).run([folder])

    assert (summary.added, summary.exit_code) == (2, 2)
    [failure] = summary.failed
    assert failure["path"] == str(bomb.resolve())
    assert "ZIP bomb" in failure["error"] and "'word/media/zeros.bin' alone 64 MB" in failure["error"]
    assert "HELPMATE_MAX_UNZIPPED_MB=16" in failure["error"]
    with session_scope(limited) as session:
        rows = {Path(d.path).name: (d.status, d.error) for d in session.scalars(select(Document))}
    assert rows["bomb.docx"] == ("failed", failure["error"])
    assert rows["shipping.docx"][0] == rows["hours.md"][0] == "indexed"


def test_the_zip_check_reads_sizes_only_and_lets_ordinary_files_pass(settings, tmp_path):
    bomb = make_zip_bomb(tmp_path / "bomb.docx")
    with pytest.raises(LoaderError, match=r"0\.\d MB compressed unpacks to 6\d MB"):
        check_unzipped_size(bomb, 16.0)
    check_unzipped_size(bomb, 100.0)  # under the limit: a large but legitimate document
    plain = make_docx(tmp_path / "plain.docx", "Plain", {"Body": ["Nothing unusual here."]})
    check_unzipped_size(plain, settings.max_unzipped_mb)
    assert load_file(plain)[0].title == "Plain"
    not_zip = tmp_path / "old.docx"
    not_zip.write_bytes(b"\xd0\xcf\x11\xe0 a Word 97 file")
    check_unzipped_size(not_zip, 1.0)  # not a ZIP: the DOCX loader says so in its own words
    with pytest.raises(LoaderError, match="not a ZIP package"):
        load_file(not_zip)


def test_uploads_are_renamed_into_place_never_rewritten(settings):
    from ui.admin_ops import save_uploads, upload_dir

    [first] = save_uploads(settings, "help", [("faq.md", b"# FAQ\n\nold answer\n")])
    with first.open("rb") as reader:  # an ingestion reading the file when a new version arrives
        [second] = save_uploads(settings, "help", [("C:\\Users\\me\\faq.md", b"# FAQ\n\nnew answer\n")])
        assert reader.read() == b"# FAQ\n\nold answer\n"  # the reader keeps the whole old file
    assert second == first and second.read_bytes() == b"# FAQ\n\nnew answer\n"
    assert sorted(p.name for p in upload_dir(settings, "help").iterdir()) == ["faq.md"]  # no temporary left
    with pytest.raises(ValueError, match="rename the file"):
        save_uploads(settings, "help", [("notes.md", b"# Notes\n"), (".env", b"SECRET=1")])
    assert not (upload_dir(settings, "help") / "notes.md").exists()  # a bad name saves none of the files


def test_an_upload_while_another_job_holds_the_knowledge_base_says_so(settings, embedder):
    from ui.admin_ops import upload_dir
    from ui.auth import add_user

    add_user("adam", "admin-password-1", "admin", settings)
    at = AppTest.from_file(str(REPO / "ui" / "views" / "admin.py"), default_timeout=240).run()
    at.text_input(key="login_name").set_value("adam")
    at.text_input(key="login_password").set_value("admin-password-1")
    [b for b in at.button if b.label == "Log in"][0].click().run()
    assert not at.exception, at.exception
    at.selectbox(key="admin_kb_choice").set_value("➕ new knowledge base")
    at.text_input(key="admin_kb_new").set_value("help")
    at.file_uploader(key="admin_files").set_value(
        ("hours.md", b"# Opening hours\n\nThe Munich store is open Monday to Saturday.\n", "text/markdown"))
    at.run()
    with kb_lock(kb_index_dir(settings, "help") / ".lock", "help"):  # e.g. `helpmate ingest` of the same knowledge base
        at.button(key="admin_ingest").click().run()
    assert not at.exception, at.exception
    [warning] = [w.value for w in at.warning]
    assert "knowledge base 'help' is being ingested by pid" in warning
    assert "Your files are saved: press Ingest again" in warning
    assert (upload_dir(settings, "help") / "hours.md").exists()

    at.button(key="admin_ingest").click().run()  # the job has finished: the same upload goes in
    assert not at.exception, at.exception
    assert not at.warning
    with session_scope(settings) as session:
        assert [d.status for d in session.scalars(select(Document))] == ["indexed"]
    shutil.rmtree(upload_dir(settings, "help"))


def test_a_mangled_zip_directory_is_a_bad_file_not_a_crashed_run(settings, embedder, tmp_path):
    """Some corruptions of a ZIP's directory make ``zipfile`` raise NotImplementedError or
    UnicodeDecodeError rather than BadZipFile; the check lets the loader report them per file."""
    import random

    folder = tmp_path / "docs"
    folder.mkdir()
    original = make_docx(tmp_path / "original.docx", "Returns", {"Window": ["Returns within 30 days."]}).read_bytes()
    rng = random.Random(7)
    for number in range(40):
        mangled = bytearray(original)
        for _ in range(rng.randint(1, 10)):
            mangled[len(mangled) - 1 - rng.randrange(600)] = rng.randrange(256)  # the central directory is at the end
        (folder / f"mangled-{number}.docx").write_bytes(bytes(mangled))
    (folder / "hours.md").write_text("# Opening hours\n\nThe Munich store is open Monday to Saturday.\n")

    summary = Ingestor("help", settings, embedder, show_progress=False).run([folder])

    assert summary.files == 41 and summary.added + len(summary.failed) == 41
    assert summary.failed and all(failure["error"] for failure in summary.failed)
