"""expand_inputs: paths, globs, directories, @lists; unresolvable entries kept for a clear row."""
from __future__ import annotations

import os

import pytest

from bossnet_onnx.errors import InputError
from bossnet_onnx.inputs import expand_inputs


@pytest.fixture
def tree(tmp_path):
    for name in ("b.fits", "a.fits.gz", "c.csv", "notes.txt", "d.ecsv"):
        (tmp_path / name).write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "e.fits").write_text("x")
    return tmp_path


def test_directory_gives_its_spectrum_files_sorted(tree):
    assert expand_inputs([str(tree)]) == [str(tree / n) for n in
                                          ("a.fits.gz", "b.fits", "c.csv", "d.ecsv")]


def test_glob_sorted_and_duplicates_removed(tree):
    got = expand_inputs([str(tree / "*.fits*"), str(tree / "b.fits")])
    assert got == [str(tree / "a.fits.gz"), str(tree / "b.fits")]


def test_list_file_with_comments_blank_lines_and_relative_paths(tree, tmp_path):
    listing = tree / "sub" / "list.txt"
    listing.write_text(f"# spectra\n\ne.fits\n  {tree / 'b.fits'}  \nmissing.fits\n")
    got = expand_inputs([f"@{listing}"])
    assert got == [str(tree / "sub" / "e.fits"), str(tree / "b.fits"),
                   os.path.join(str(tree / "sub"), "missing.fits")]


def test_unresolvable_entries_are_kept_as_given(tree):
    got = expand_inputs([str(tree / "nope.fits"), str(tree / "zz*.fits")])
    assert got == [str(tree / "nope.fits"), str(tree / "zz*.fits")]
    empty = tree / "empty"
    empty.mkdir()
    assert expand_inputs([str(empty)]) == [str(empty)]


def test_missing_list_file_is_an_error(tmp_path):
    with pytest.raises(InputError, match=r"@.*absent\.txt: cannot read list file"):
        expand_inputs([f"@{tmp_path / 'absent.txt'}"])
