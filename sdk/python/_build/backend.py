"""A dependency-free PEP 517 build backend for the matchlock package.

The package is pure Python with no dependencies, so building it needs only
the standard library. With ``requires = []`` pip installs it offline, with or
without build isolation, on any Python >= 3.10 (no setuptools or wheel).
Supports ``pip install .``, ``pip install -e .`` and ``python -m build``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "matchlock"


def _project() -> dict[str, str]:
    """The plain ``key = "value"`` entries of pyproject.toml's [project] table."""
    fields: dict[str, str] = {}
    section = ""
    for line in (ROOT / "pyproject.toml").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
            continue
        m = re.match(r'^([A-Za-z_-]+)\s*=\s*"([^"]*)"\s*$', line)
        if section == "[project]" and m:
            fields[m.group(1)] = m.group(2)
    return fields


def _metadata() -> tuple[str, str, str]:
    p = _project()
    name, version = p["name"], p["version"]
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {name}",
        f"Version: {version}",
        f"Summary: {p.get('description', '')}",
        f"Requires-Python: {p.get('requires-python', '>=3.10')}",
        "License: MIT",
        "Description-Content-Type: text/markdown",
    ]
    readme = ROOT / "README.md"
    body = readme.read_text(encoding="utf-8") if readme.exists() else ""
    return name, version, "\n".join(lines) + "\n\n" + body


def _dist_info(name: str, version: str) -> str:
    return f"{name.replace('-', '_')}-{version}.dist-info"


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def _write_wheel(wheel_directory: str, files: dict[str, bytes]) -> str:
    name, version, metadata = _metadata()
    info = _dist_info(name, version)
    files = dict(files)
    files[f"{info}/METADATA"] = metadata.encode("utf-8")
    files[f"{info}/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: matchlock-build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    ).encode()
    record = [_record_line(p, d) for p, d in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    filename = f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in files.items():
            zinfo = zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0))
            zinfo.external_attr = 0o644 << 16
            zinfo.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(zinfo, data)
    return filename


def _package_files() -> dict[str, bytes]:
    out = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        out[path.relative_to(ROOT).as_posix()] = path.read_bytes()
    return out


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _write_wheel(wheel_directory, _package_files())


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    pth = f"{ROOT}\n".encode()
    return _write_wheel(wheel_directory, {f"__editable__.{PACKAGE}.pth": pth})


def build_sdist(sdist_directory, config_settings=None):
    name, version, _ = _metadata()
    base = f"{name}-{version}"
    filename = f"{base}.tar.gz"
    members = ["pyproject.toml", "README.md", "_build/backend.py", *_package_files()]
    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz") as tar:
        for rel in members:
            path = ROOT / rel
            if path.exists():
                tar.add(path, arcname=f"{base}/{rel}")
        pkg_info = ("Metadata-Version: 2.1\n" f"Name: {name}\n" f"Version: {version}\n").encode()
        ti = tarfile.TarInfo(f"{base}/PKG-INFO")
        ti.size = len(pkg_info)
        tar.addfile(ti, io.BytesIO(pkg_info))
    return filename
