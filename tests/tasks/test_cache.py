"""Cache keys of the expensive tasks: equal inputs meet the same key, any change misses it."""

from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pytest

from attnviz import config
from tasks.cache import cache_key, code_digest, file_digest, frame_digest

PARTS = ("sample/AAPL/1d", {"epochs": 2, "lr": 1e-3}, ["bars-digest"])


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A stand-in ``attnviz/`` package whose source ``code_digest`` reads, empty at first.

    The digest is computed once per process: it is forgotten before and after the test, so
    that no other test sees the stand-in's digest.
    """
    monkeypatch.setattr(config, "REPO_ROOT", tmp_path)
    code_digest.cache_clear()
    yield tmp_path / "attnviz"
    code_digest.cache_clear()


def digest_of(package: Path, files: dict[str, str]) -> str:
    """``code_digest`` of ``package`` holding exactly ``files`` (relative path -> source)."""
    for path in package.rglob("*.py"):
        path.unlink()
    for name, source in files.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(source)
    code_digest.cache_clear()
    return code_digest()


def test_equal_parts_give_the_same_key_whatever_the_order_of_a_mapping() -> None:
    reordered = (PARTS[0], {"lr": 1e-3, "epochs": 2}, list(PARTS[2]))
    assert cache_key("train", *PARTS) == cache_key("train", *reordered)
    assert cache_key("train", *PARTS).startswith("train-")  # the task reads in the key


@pytest.mark.parametrize(
    "changed",
    [
        ("sample/AAPL/1h", PARTS[1], PARTS[2]),
        (PARTS[0], {"epochs": 3, "lr": 1e-3}, PARTS[2]),
        (PARTS[0], PARTS[1], ["other-digest"]),
        PARTS[:2],
        (*PARTS, None),
    ],
    ids=["first part", "a setting", "last part", "one part fewer", "one part more"],
)
def test_any_changed_part_changes_the_key(changed: tuple[object, ...]) -> None:
    assert cache_key("train", *changed) != cache_key("train", *PARTS)


def test_task_names_and_parts_never_run_into_each_other() -> None:
    keys = {
        cache_key("train", "ab", "c"),
        cache_key("train", "a", "bc"),
        cache_key("train", "abc"),
        cache_key("train", ["a", "b"], "c"),
        cache_key("train-a", "b"),
        cache_key("train", "a", "b"),
        cache_key("analyze", "a", "b"),
    }
    assert len(keys) == 7


def test_an_edit_to_the_package_changes_the_key(package: Path) -> None:
    digest_of(package, {"model.py": "WIDTH = 16\n"})
    key = cache_key("train", *PARTS)
    digest_of(package, {"model.py": "WIDTH = 32\n"})
    assert cache_key("train", *PARTS) != key


def test_the_code_digest_reads_every_module_of_the_package_by_name_and_content(
    package: Path,
) -> None:
    files = {"model.py": "WIDTH = 16\n", "plots/heatmap.py": "DPI = 100\n"}
    digest = digest_of(package, files)
    assert digest_of(package, dict(files)) == digest
    assert digest_of(package, {**files, "model.py": "WIDTH = 32\n"}) != digest
    assert digest_of(package, {**files, "plots/timeline.py": ""}) != digest  # a new module
    moved = {"models.py": files["model.py"], "plots/heatmap.py": files["plots/heatmap.py"]}
    assert digest_of(package, moved) != digest  # the same source under another name
    (package / "notes.txt").write_text("not Python")
    assert digest_of(package, files) == digest  # only the Python source counts


def test_two_different_packages_never_share_a_code_digest(package: Path) -> None:
    # Both read "a.py" "b.py" "x" in a row: one file whose source starts with a name, or two.
    assert digest_of(package, {"a.py": "b.pyx"}) != digest_of(package, {"a.py": "", "b.py": "x"})


def bars() -> pl.DataFrame:
    return pl.DataFrame(
        {"symbol": ["AAPL", "AAPL", "AAPL"], "close": [100.0, 101.5, 99.25], "volume": [1, 2, 3]}
    )


def test_a_frame_digest_is_its_content_not_the_object_or_its_memory_layout() -> None:
    frame = bars()
    chunked = pl.concat([frame[:1], frame[1:]], rechunk=False)
    assert chunked.n_chunks() > 1
    assert frame_digest(bars()) == frame_digest(frame) == frame_digest(chunked)
    assert frame_digest(chunked.rechunk()) == frame_digest(frame)


CHANGES: dict[str, Callable[[pl.DataFrame], pl.DataFrame]] = {
    "a float's width": lambda frame: frame.with_columns(pl.col("close").cast(pl.Float32)),
    "an integer's width": lambda frame: frame.with_columns(pl.col("volume").cast(pl.Int32)),
    "a value": lambda frame: frame.with_columns(pl.col("close") + 1e-9),
    "a null": lambda frame: frame.with_columns(close=pl.Series([None, 101.5, 99.25])),
    "a column's name": lambda frame: frame.rename({"close": "open"}),
    "the columns' order": lambda frame: frame.select(reversed(frame.columns)),
}


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_a_frame_digest_changes_with_any_value_name_or_type(
    change: Callable[[pl.DataFrame], pl.DataFrame],
) -> None:
    # The widths print the same values as CSV: only the schema tells them apart.
    assert frame_digest(change(bars())) != frame_digest(bars())


def test_a_null_and_an_empty_string_differ() -> None:
    empty = pl.DataFrame({"symbol": [""]})
    null = pl.DataFrame({"symbol": [None]}, schema={"symbol": pl.String})
    assert frame_digest(empty) != frame_digest(null)


def test_a_file_digest_is_its_bytes_wherever_it_lies(tmp_path: Path) -> None:
    checkpoint, copy, other = (
        tmp_path / "v1.pt",
        tmp_path / "copies" / "v1-copy.pt",
        tmp_path / "v2.pt",
    )
    copy.parent.mkdir()
    checkpoint.write_bytes(b"\x00weights\x01")
    copy.write_bytes(checkpoint.read_bytes())
    other.write_bytes(b"\x00weights\x02")
    assert file_digest(checkpoint) == file_digest(str(copy))
    assert file_digest(other) != file_digest(checkpoint)
