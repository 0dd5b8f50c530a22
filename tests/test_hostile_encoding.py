"""Hostile inputs, encodings and file types: what a scenario file may be made of.

Binary data, other encodings, devices, FIFOs, folders, links and oversized files get one clean
error naming the file; harmless variants (a BOM, CRLF, JSON, non-ASCII names) just work.
"""

from __future__ import annotations

import codecs
import gzip
import os
import random

import pytest
import yaml

from simulator.scenario.loader import MAX_FILE_BYTES
from tests.helpers import base_scenario
from tests.hostile import assert_clean_error, assert_ok, latsim, tiny_run, validate, write_scenario

VALID = yaml.safe_dump(base_scenario(), sort_keys=False)
RANDOM_BYTES = random.Random(9).randbytes(4096)

# (id, file content, words the error must contain; None: the file is valid)
CONTENTS = [
    ("latin-1", VALID.replace("name: test", "name: caf\xe9").encode("latin-1"), ["not UTF-8", "0xe9", "line 1"]),
    ("utf-16-le-bom", codecs.BOM_UTF16_LE + VALID.encode("utf-16-le"), ["UTF-16"]),
    ("utf-16-be-bom", codecs.BOM_UTF16_BE + VALID.encode("utf-16-be"), ["UTF-16"]),
    ("utf-16-no-bom", VALID.encode("utf-16-le"), ["NUL byte"]),
    ("utf-32-bom", codecs.BOM_UTF32_LE + VALID.encode("utf-32-le"), ["UTF-32"]),
    ("random-bytes", RANDOM_BYTES, ["not a text file"]),
    ("png-header", b"\x89PNG\r\n\x1a\n" + RANDOM_BYTES[:200], ["not"]),
    ("gzipped-yaml", gzip.compress(VALID.encode()), ["not"]),
    ("nul-in-the-middle", VALID.encode()[:40] + b"\0" + VALID.encode()[40:], ["NUL byte", "line"]),
    ("surrogate-cesu", VALID.replace("name: test", "name: X").encode().replace(b"X", b"\xed\xa0\x80"), ["not UTF-8"]),
    ("overlong-slash", VALID.encode().replace(b"name: test", b"name: \xc0\xaf"), ["not UTF-8"]),
    ("truncated-multibyte", VALID.encode() + b"# \xe2\x82", ["not UTF-8"]),
    ("empty", b"", ["empty"]),
    ("whitespace-only", b"  \n\n   \n", ["empty"]),
    ("comments-only", b"# nothing here\n# at all\n", ["empty"]),
    ("bell-character", VALID.replace("name: test", "name: te\x07st").encode(), ["not valid YAML"]),
    ("tab-indentation", VALID.replace("\n  ", "\n\t").encode(), ["not valid YAML", "line"]),
    ("escape-sequences", b"\x1b[31mname: red\x1b[0m\n", ["not valid YAML"]),
    ("utf-8-bom", codecs.BOM_UTF8 + VALID.encode(), None),
    ("crlf-line-ends", VALID.replace("\n", "\r\n").encode(), None),
    ("json", __import__("json").dumps(base_scenario()).encode(), None),
    ("non-ascii-names", VALID.replace("name: test", "name: 名前-✓").replace("name: a", "name: ünïcode").encode(), None),
]


@pytest.mark.parametrize(("content", "needles"), [case[1:] for case in CONTENTS], ids=[case[0] for case in CONTENTS])
def test_scenario_content(tmp_path, content, needles):
    path = write_scenario(tmp_path, content)
    result = validate(path)
    if needles is None:
        assert_ok(result)
    else:
        assert_clean_error(result, str(path), *needles)


def _fifo(tmp_path):
    path = tmp_path / "fifo.yaml"
    os.mkfifo(path)
    return path


def _loop(tmp_path):
    (tmp_path / "a.yaml").symlink_to(tmp_path / "b.yaml")
    (tmp_path / "b.yaml").symlink_to(tmp_path / "a.yaml")
    return tmp_path / "a.yaml"


def _dangling(tmp_path):
    (tmp_path / "link.yaml").symlink_to(tmp_path / "gone.yaml")
    return tmp_path / "link.yaml"


def _oversized(tmp_path):
    return write_scenario(tmp_path, b"# padding\n" * (MAX_FILE_BYTES // 10 + 1))


def _link_to_valid(tmp_path):
    (tmp_path / "link.yaml").symlink_to(write_scenario(tmp_path, VALID))
    return tmp_path / "link.yaml"


# (id, make the path, words the error must contain; None: valid)
PATHS = [
    ("dev-zero", lambda tmp: "/dev/zero", ["not a regular file"]),
    ("dev-null", lambda tmp: "/dev/null", ["not a regular file"]),
    ("dev-urandom", lambda tmp: "/dev/urandom", ["not a regular file"]),
    ("fifo-without-writer", _fifo, ["not a regular file"]),
    ("directory", lambda tmp: tmp, ["is a folder"]),
    ("missing", lambda tmp: tmp / "nowhere.yaml", ["does not exist"]),
    ("symlink-loop", _loop, ["cannot be opened"]),
    ("dangling-symlink", _dangling, ["does not exist"]),
    ("over-the-size-limit", _oversized, ["limit", "10.0 MB"]),
    ("proc-file", lambda tmp: "/proc/self/status", ["invalid scenario", "… and"]),
    ("symlink-to-valid", _link_to_valid, None),
]


@pytest.mark.parametrize(("make", "needles"), [case[1:] for case in PATHS], ids=[case[0] for case in PATHS])
def test_scenario_path(tmp_path, make, needles):
    path = make(tmp_path)
    result = validate(path, seconds=20)
    if needles is None:
        assert_ok(result)
    else:
        assert_clean_error(result, str(path), *needles)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path):
    path = write_scenario(tmp_path, VALID)
    path.chmod(0)
    assert_clean_error(validate(path), str(path), "Permission denied")


@pytest.mark.parametrize("content", [RANDOM_BYTES, codecs.BOM_UTF16_LE + VALID.encode("utf-16-le")], ids=["binary", "utf-16"])
def test_run_refuses_it_too(tmp_path, content):
    """The same check guards ``latsim run`` as a real process."""
    path = write_scenario(tmp_path, content)
    assert_clean_error(latsim("run", path, *tiny_run(), timeout=60), str(path))
