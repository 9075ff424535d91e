"""The in-tree build backend makes an installable wheel with no dependencies."""

from __future__ import annotations

import sys
import tempfile
import unittest
import zipfile

import _support

sys.path.insert(0, str(_support.SDK_DIR / "_build"))
import backend  # noqa: E402


class TestBackend(unittest.TestCase):
    def test_wheel_contents(self) -> None:
        self.assertEqual(backend.get_requires_for_build_wheel(), [])
        with tempfile.TemporaryDirectory() as out:
            name = backend.build_wheel(out)
            self.assertRegex(name, r"^matchlock-\d+\.\d+\.\d+-py3-none-any\.whl$")
            with zipfile.ZipFile(f"{out}/{name}") as whl:
                names = set(whl.namelist())
                info = name.split("-py3")[0] + ".dist-info"
                self.assertTrue({"matchlock/__init__.py", "matchlock/client.py", f"{info}/METADATA",
                                 f"{info}/WHEEL", f"{info}/RECORD"} <= names)
                self.assertFalse(any("tests" in n for n in names))
                metadata = whl.read(f"{info}/METADATA").decode()
                self.assertIn("Name: matchlock", metadata)
                self.assertIn("Requires-Python: >=3.10", metadata)
                record = whl.read(f"{info}/RECORD").decode()
                self.assertEqual(len(record.strip().splitlines()), len(names))

    def test_sdist(self) -> None:
        with tempfile.TemporaryDirectory() as out:
            name = backend.build_sdist(out)
            self.assertTrue(name.endswith(".tar.gz"))


if __name__ == "__main__":
    unittest.main()
