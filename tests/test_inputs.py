"""expand_inputs: paths, globs, directories, @lists; unresolvable entries kept for a clear row."""
from __future__ import annotations

import os

import pytest

from bossnet_onnx.errors import InputError
from bossnet_onnx.readers.paths import SPECTRUM_SUFFIXES, expand_inputs


@pytest.fixture
def tree(tmp_path):
    for name in ("b.fits", "a.fits.gz", "c.csv", "notes.txt", "d.ecsv", "e.fit", "F.FITS"):
        (tmp_path / name).write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "e.fits").write_text("x")
    (tmp_path / "sub" / "z.fits").write_text("x")
    return tmp_path


def names(paths, base):
    return [os.path.relpath(p, base) for p in paths]


def test_suffixes():
    assert SPECTRUM_SUFFIXES == (".fits", ".fits.gz", ".fit", ".fit.gz", ".csv", ".ecsv",
                                 ".csv.gz", ".ecsv.gz", ".xml", ".vot", ".xml.gz", ".vot.gz")


def test_directory_gives_its_spectrum_files_sorted_not_recursive(tree):
    assert names(expand_inputs([str(tree)]), tree) == \
        ["F.FITS", "a.fits.gz", "b.fits", "c.csv", "d.ecsv", "e.fit"]


def test_paths_kept_as_given_in_the_order_given(tree):
    given = [str(tree / "c.csv"), "relative/x.fits", str(tree / "a.fits.gz")]
    assert expand_inputs(given) == given


def test_glob_sorted_and_duplicates_removed(tree):
    got = expand_inputs([str(tree / "*.fits*"), str(tree / "b.fits"), str(tree / "." / "b.fits")])
    assert names(got, tree) == ["a.fits.gz", "b.fits"]


def test_recursive_glob_and_glob_matching_directories(tree):
    assert names(expand_inputs([str(tree / "**" / "e.fits")]), tree) == ["sub/e.fits"]
    assert names(expand_inputs([str(tree / "su*")]), tree) == ["sub/e.fits", "sub/z.fits"]


def test_list_file_comments_blank_lines_relative_paths_dirs_and_globs(tree):
    listing = tree / "sub" / "list.txt"
    listing.write_text(f"# spectra\n\ne.fits\n  {tree / 'b.fits'}  \nmissing.fits\n"
                       f"../*.csv\n..\n   # indented comment\ne.fits\n")
    got = expand_inputs([f"@{listing}"])
    assert got == [str(tree / "sub" / "e.fits"), str(tree / "b.fits"),
                   str(tree / "sub" / "missing.fits"),
                   str(tree / "sub" / ".." / "c.csv"),
                   # the parent directory: its spectrum files, c.csv and b.fits already listed
                   *[str(tree / "sub" / ".." / n) for n in ("F.FITS", "a.fits.gz", "d.ecsv",
                                                             "e.fit")]]


def test_list_relative_to_the_list_not_the_working_directory(tree, tmp_path, monkeypatch):
    (tree / "sub" / "list.txt").write_text("z.fits\n")
    monkeypatch.chdir(tree)
    assert expand_inputs(["@sub/list.txt"]) == [str(tree / "sub" / "z.fits")]


def test_unresolvable_entries_are_kept_as_given(tree):
    got = expand_inputs([str(tree / "nope.fits"), str(tree / "zz*.fits"), str(tree / "nope.fits")])
    assert got == [str(tree / "nope.fits"), str(tree / "zz*.fits")]
    empty = tree / "empty"
    empty.mkdir()
    assert expand_inputs([str(empty)]) == [str(empty)]


def test_mixed_inputs_keep_their_order(tree):
    listing = tree / "l.txt"
    listing.write_text("d.ecsv\n")
    got = expand_inputs([str(tree / "sub"), f"@{listing}", str(tree / "c.csv")])
    assert names(got, tree) == ["sub/e.fits", "sub/z.fits", "d.ecsv", "c.csv"]


def test_missing_list_file_is_an_error(tmp_path):
    with pytest.raises(InputError, match=r"^@.*absent\.txt: list file not found; expected a "
                                         r"text file with one spectrum path a line$"):
        expand_inputs([f"@{tmp_path / 'absent.txt'}"])


def test_list_file_that_is_a_directory_is_an_error(tmp_path):
    with pytest.raises(InputError, match=r"is a directory, not a list file"):
        expand_inputs([f"@{tmp_path}"])


def test_bare_at_sign_is_a_path(tmp_path):
    assert expand_inputs(["@"]) == ["@"]


def test_symlink_loop_under_a_recursive_glob_gives_each_file_once(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "spec.fits").write_text("x")
    os.symlink(tmp_path / "data", tmp_path / "data" / "loop")  # data/loop -> data
    os.symlink(tmp_path / "data" / "spec.fits", tmp_path / "alias.fits")
    got = expand_inputs([str(tmp_path / "**" / "*.fits"), str(tmp_path / "alias.fits")])
    assert got == [str(tmp_path / "alias.fits")]  # sorted matches: the first spelling kept
    assert len(expand_inputs([str(tmp_path / "data" / "**" / "*.fits")])) == 1


def test_a_folder_gives_every_suffix_a_reader_reads(tmp_path):
    """One list of suffixes: a folder of Gaia archive VOTables (.xml) is expanded like a single
    .xml file is read (the folder expansion once knew only .vot)."""
    from bossnet_onnx.readers import gaia

    for name in ("a.xml", "b.vot", "c.csv.gz", "d.fits", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [os.path.basename(p) for p in expand_inputs([str(tmp_path)])] == \
        ["a.xml", "b.vot", "c.csv.gz", "d.fits"]
    assert set(gaia.TEXT_SUFFIXES) <= set(SPECTRUM_SUFFIXES)
