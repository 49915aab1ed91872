"""The cache keeps whole, verified entries: corruption is a miss, concurrent writers are safe."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from ml.data.cache import Cache, Entry, cache_key


def _read(entry: Entry) -> bytes:
    return entry.file("data.bin").read_bytes()


def _store(cache: Cache, key: str, payload: bytes) -> Entry:
    return cache.store(
        "things", key, {"data.bin": lambda path: path.write_bytes(payload)}, description="test"
    )


def test_stored_entry_loads_back(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    assert cache.load("things", "ab12", _read) is None
    _store(cache, "ab12", b"hello" * 1000)
    hit = cache.load("things", "ab12", _read)
    assert hit is not None and hit[1] == b"hello" * 1000
    assert hit[0].meta["files"]["data.bin"]["bytes"] == 5000


def test_keys_cover_values_and_their_types() -> None:
    base = cache_key(sql="SELECT 1", params={"start": "2025-01-01"})
    assert base == cache_key(params={"start": "2025-01-01"}, sql="SELECT 1")
    assert base != cache_key(sql="SELECT 1", params={"start": "2025-01-02"})
    assert base != cache_key(sql="SELECT 2", params={"start": "2025-01-01"})
    assert base != cache_key(sql="SELECT 1", params={"start": date(2025, 1, 1)})


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete", "meta"])
def test_damaged_entry_is_a_miss_and_removed(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    cache = Cache(tmp_path)
    entry = _store(cache, "cd34", bytes(range(256)) * 100)
    data = entry.file("data.bin")
    if damage == "flip":
        raw = bytearray(data.read_bytes())
        raw[1234] ^= 0x01
        data.write_bytes(bytes(raw))
    elif damage == "truncate":
        data.write_bytes(data.read_bytes()[:-10])
    elif damage == "delete":
        data.unlink()
    else:
        entry.file("meta.json").write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="ml.data.cache"):
        assert cache.load("things", "cd34", _read) is None
    assert "corrupt" in caplog.text
    assert not entry.path.exists()
    # and the next store works again
    _store(cache, "cd34", b"fresh")
    hit = cache.load("things", "cd34", _read)
    assert hit is not None and hit[1] == b"fresh"


def test_unparseable_entry_is_a_miss(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    _store(cache, "ef56", b"not json")

    def read_json(entry: Entry) -> object:
        return json.loads(entry.file("data.bin").read_text())

    assert cache.load("things", "ef56", read_json) is None


WRITER = """
import sys
from pathlib import Path
from ml.data.cache import Cache
root, key, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
cache = Cache(Path(root))
payload = bytes([seed]) * 2_000_000  # big enough that the writes overlap
for _ in range(5):
    cache.store("things", key, {"data.bin": lambda path: path.write_bytes(payload)}, description="t")
    hit = cache.load("things", key, lambda entry: entry.file("data.bin").read_bytes())
    assert hit is not None and len(set(hit[1])) == 1 and len(hit[1]) == 2_000_000
"""


def test_concurrent_writers_leave_one_whole_entry(tmp_path: Path) -> None:
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), "same-key", str(seed)])
        for seed in range(4)
    ]
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0, 0, 0]
    cache = Cache(tmp_path)
    hit = cache.load("things", "same-key", _read)
    assert hit is not None and len(set(hit[1])) == 1  # one writer's bytes, never a mix
    leftovers = [p.name for p in (tmp_path / "things").rglob("*") if p.name.startswith(".")]
    assert leftovers == []


def test_list_and_clear(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    _store(cache, "aa11", b"x" * 10)
    cache.store("other", "bb22", {"f": lambda p: p.write_bytes(b"y" * 5)}, description="o")
    assert {e.key for e in cache.entries()} == {"aa11", "bb22"}
    assert cache.clear("other") == (1, 5)
    assert [e.key for e in cache.entries()] == ["aa11"]
    assert cache.clear() == (1, 10)
    assert list(cache.entries()) == []


def test_unwritable_root_is_a_clear_error(tmp_path: Path) -> None:
    from ml.data.cache import CacheError

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(CacheError, match="RTML_CACHE_DIR"):
        _store(Cache(blocker), "aa11", b"x")
