"""CSV copies: a full or unwritable data directory fails the job in one line; files are group-readable."""

import contextlib
import stat
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from course_inventory.inventory import run_course_inventory
from db.csv_export import write_csvs
from sandbox.generator import generate_university
from tests.helpers.canvas_sandbox import canvas_sandbox
from vocab import JobError, LoadError

ROOT = Path(__file__).resolve().parents[2]
FRAME = pd.DataFrame({"id": range(2000), "name": ["a long enough course name"] * 2000})


@contextlib.contextmanager
def full_filesystem(size="32k"):
    """A tiny tmpfs: writes beyond its size fail with ENOSPC, as on a full volume (needs CAP_SYS_ADMIN)."""
    mount_point = Path(tempfile.mkdtemp(prefix="cit-full-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount_point)],
                             capture_output=True).returncode == 0
    if not mounted:
        mount_point.rmdir()
        pytest.skip("cannot mount a tmpfs here (not root, or no CAP_SYS_ADMIN)")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)
        mount_point.rmdir()


def test_csvs_are_group_readable(tmp_path):
    (path,) = write_csvs({"course": FRAME}, tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_a_full_directory_is_one_line_and_keeps_the_previous_copies():
    with full_filesystem() as directory:
        (directory / "course.csv").write_text("previous\n")
        with pytest.raises(LoadError) as info:
            write_csvs({"small": FRAME.head(2), "course": FRAME}, directory)
        message = str(info.value)
        assert "No space left on device" in message and "(1 of 2 written" in message and "\n" not in message
        assert (directory / "course.csv").read_text() == "previous\n"
        assert sorted(p.name for p in directory.iterdir()) == ["course.csv", "small.csv"]   # no temporary left


def test_a_read_only_directory_is_one_line_without_traceback(tmp_path):
    base = Path(tempfile.mkdtemp(prefix="cit-ro-", dir="/tmp"))
    base.chmod(0o755)                                 # owned by root: not writable by nobody
    script = ("import sys, pandas as pd; from pathlib import Path; from db.csv_export import write_csvs; "
              "from vocab import LoadError\n"
              "try:\n    write_csvs({'course': pd.DataFrame({'a': [1]})}, Path(sys.argv[1]))\n"
              "except LoadError as exc:\n    print(exc); sys.exit(1)")
    try:
        result = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable,
                                 "-c", script, str(base)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    finally:
        base.rmdir()
    assert result.returncode == 1, result.stderr
    assert result.stdout.strip() == (f"cannot write CSV copies into {base}: Permission denied (0 of 1 written; "
                                     "earlier copies of the others kept)")


def test_the_job_fails_in_one_line_and_keeps_the_previous_data(udw_db_params, migrated_engine, migrated_db_params):
    university = generate_university("small", seed=7)
    terms = [t.id for t in university.terms]
    with canvas_sandbox(university, udw_db=udw_db_params, inventory_db=migrated_db_params, term_ids=terms) as box:
        run_course_inventory(box.env, engine=migrated_engine)
        with migrated_engine.connect() as conn:
            before = conn.execute(sa.text("SELECT COUNT(*), SUM(canvas_id) FROM course")).one()
        with full_filesystem("16k") as directory, pytest.raises(JobError) as info:
            run_course_inventory({**box.env, "CREATE_CSVS": True}, engine=migrated_engine,
                                 data_dir=directory / uuid.uuid4().hex)
    message = str(info.value)
    assert message.startswith("COURSE_INVENTORY failed, previous data kept: cannot write CSV copies into")
    assert "No space left on device" in message and "\n" not in message
    with migrated_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*), SUM(canvas_id) FROM course")).one() == before
