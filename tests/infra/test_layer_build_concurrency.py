"""Two builds of one layer artifact at once (two synths, two test workers) both succeed."""

from __future__ import annotations

import threading
import zipfile
from pathlib import Path

from stacks import layer_build


def test_two_builders_of_one_zip_never_move_each_others_half_written_file(tmp_path: Path) -> None:
    # Given a tree to zip and eight builders writing the same artifact at once, twenty times
    tree = tmp_path / "site"
    for n in range(50):
        (tree / f"pkg{n % 5}").mkdir(parents=True, exist_ok=True)
        (tree / f"pkg{n % 5}" / f"m{n}.py").write_text("x = 1\n" * 200)
    out = tmp_path / "build" / "layer-test.zip"
    out.parent.mkdir()
    errors: list[BaseException] = []

    def build() -> None:
        try:
            for _ in range(20):
                layer_build._write_zip(out, [(tree, "python/")])
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then no builder failed, the artifact is a whole zip, and no temporary file is left
    assert errors == []
    with zipfile.ZipFile(out) as zf:
        assert zf.testzip() is None and len(zf.namelist()) == 50
    assert [p.name for p in out.parent.iterdir()] == ["layer-test.zip"]
