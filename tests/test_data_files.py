"""The user's own data by path: .npz arrays, a .csv table, a folder of class sub-folders of images.

Every format loads through `nas.data.load` (so `nas search --data PATH` and `nas.search(data=PATH)`
too); every bad file is one `nas: error:` line, exit 2, and leaves no `runs/` behind; a resumed
search reloads the file and refuses one that changed or vanished.
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import nas
import spaces
from nas.cli import main
from nas.data import from_arrays, load
from nas.data.files import read_csv, read_images, read_npz
from nas.engine.callbacks import Callback
from nas.errors import UserError
from nas.journal import JournalView

SMALL = ("--set", "width=16:32", "--set", "n_blocks=1")


def _raw(data: nas.Dataset, split: str) -> torch.Tensor:
    """A split's features in the file's own units (standardisation undone)."""
    return getattr(data, f"x_{split}") * data.std + data.mean


def _cli(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's own errors
            code = exc.code if isinstance(exc.code, int) else 2
    return code, err.getvalue()


# ---------------------------------------------------------------- .npz


def test_npz_without_test_arrays_splits_as_from_arrays_does(tmp_path) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 5)), np.arange(60) % 3
    np.savez(tmp_path / "my data.npz", x=x, y=y)

    data = load(str(tmp_path / "my data.npz"), seed=4)
    same = from_arrays(x, y, seed=4)
    assert data.name == "my-data"  # safe in a run name
    assert data.input_shape == (5,) and data.num_classes == 3 and data.has_test_split
    for split in ("train", "val", "test"):
        assert torch.equal(getattr(data, f"x_{split}"), getattr(same, f"x_{split}"))
        assert torch.equal(getattr(data, f"y_{split}"), getattr(same, f"y_{split}"))
    # The split follows the data seed, as for the arrays path.
    assert not torch.equal(load(tmp_path / "my data.npz", seed=5).y_test, data.y_test)


def test_npz_with_test_arrays_keeps_them_and_maps_text_labels(tmp_path) -> None:
    rng = np.random.default_rng(1)
    x, x_test = rng.normal(size=(40, 1, 6, 6)), rng.normal(size=(10, 1, 6, 6))
    y = np.array(["dog", "cat"] * 20)
    y_test = np.array(["cat"] * 5 + ["dog"] * 5)
    np.savez(tmp_path / "pets.npz", x=x, y=y, x_test=x_test, y_test=y_test)

    table = read_npz(tmp_path / "pets.npz")
    assert table.classes == ("cat", "dog")
    assert table.y[:2].tolist() == [1, 0] and table.y_test.tolist() == [0] * 5 + [1] * 5
    data = load(str(tmp_path / "pets.npz"))
    assert data.input_shape == (1, 6, 6) and data.num_classes == 2
    assert data.sizes == {"train": 32, "val": 8, "test": 10}
    assert torch.allclose(_raw(data, "test"), torch.as_tensor(x_test, dtype=torch.float32),
                          atol=1e-5)
    assert data.y_test.tolist() == [0] * 5 + [1] * 5


# ---------------------------------------------------------------- .csv

CSV = """\
age,colour,rooms,species
31,red,3,setosa
,blue,2,versicolor
45,red,,setosa
52,,4,virginica
NA,red,3,versicolor
29,green,2,virginica
33,blue,5,setosa
40,red,1,
38,green,2,versicolor
61,blue,3,virginica
27,red,4,setosa
50,green,1,versicolor
44,red,2,virginica
"""


def test_csv_one_hot_encodes_imputes_and_maps_a_text_target(tmp_path, caplog) -> None:
    path = tmp_path / "flowers.csv"
    path.write_text(CSV)
    with caplog.at_level(logging.WARNING, logger="nas.data"):
        table = read_csv(path, "species")
    # One line: how many values, in which columns, and the row without a label.
    assert [r.getMessage() for r in caplog.records] == [
        f"nas: {path}: imputed 4 missing values: 2 in age (median), 1 in colour (most "
        "frequent, 'red'), 1 in rooms (median); dropped 1 row without a 'species' value"]
    assert table.classes == ("setosa", "versicolor", "virginica")
    assert table.features == ("age", "colour=blue", "colour=green", "colour=red", "rooms")
    assert table.y.tolist() == [0, 1, 0, 2, 1, 2, 0, 1, 2, 0, 1, 2]  # line 9 dropped
    ages = [31, 45, 52, 29, 33, 38, 61, 27, 50, 44]
    median = float(np.median(ages))
    assert table.x[:, 0].tolist() == [31, median, 45, 52, median, 29, 33, 38, 61, 27, 50, 44]
    assert table.x[3, 1:4].tolist() == [0, 0, 1]  # the missing colour became 'red'
    assert table.x[1, 1:4].tolist() == [1, 0, 0]
    assert table.x[2, 4] == float(np.median([3, 2, 4, 3, 2, 5, 2, 3, 4, 1, 2]))

    data = nas.load_dataset(str(path), target="species", seed=0)
    assert data.name == "flowers" and data.input_shape == (5,) and data.num_classes == 3
    assert sum(data.sizes.values()) == 12


def test_csv_integer_labels_become_0_to_k_minus_1_and_semicolons_work(tmp_path) -> None:
    path = tmp_path / "codes.csv"
    path.write_text("a;label\n" + "".join(f"{i};{[9, 3, 7][i % 3]}\n" for i in range(15)))
    table = read_csv(path, "label")
    assert table.classes == ("3", "7", "9")
    assert table.y.tolist()[:3] == [2, 0, 1] and table.x[:, 0].tolist() == list(range(15))


# ---------------------------------------------------------------- image folders


def _image_folder(root: Path, colours: dict[str, tuple[int, int, int]], *, grey: bool = False,
                  sizes: tuple[tuple[int, int], ...] = ((12, 10), (9, 14))) -> Path:
    """Two images per class, a PNG and a JPEG, of the given (width, height) sizes."""
    for name, colour in colours.items():
        (root / name).mkdir(parents=True)
        for i, (size, suffix) in enumerate(zip(sizes, ("png", "jpg"), strict=True)):
            image = Image.new("RGB", size, colour)
            (image.convert("L") if grey else image).save(root / name / f"{i}.{suffix}")
    return root


def test_image_folder_reads_png_and_jpeg_resized_to_one_size(tmp_path) -> None:
    folder = _image_folder(tmp_path / "photos", {"red": (220, 20, 20), "blue": (20, 20, 220),
                                                 "green": (20, 200, 20)})
    table = read_images(folder, "8x6")
    assert table.classes == ("blue", "green", "red")
    assert table.x.shape == (6, 3, 8, 6) and table.x.dtype == np.uint8
    # Each class keeps its colour through decoding (JPEG is lossy: within a few levels).
    dominant = table.x.reshape(6, 3, -1).mean(axis=2).argmax(axis=1)
    assert dominant.tolist() == [2, 2, 1, 1, 0, 0] and table.y.tolist() == [0, 0, 1, 1, 2, 2]

    grey = _image_folder(tmp_path / "grey", {"dark": (30, 30, 30), "light": (200, 200, 200)},
                         grey=True, sizes=((7, 5), (7, 5)))
    data = nas.load_dataset(str(grey) + "/", seed=0)  # no resize: one size already
    assert data.input_shape == (1, 5, 7) and data.num_classes == 2 and data.name == "grey"
    big = nas.load_dataset(str(folder), image_size=5)
    assert big.input_shape == (3, 5, 5) and big.num_classes == 3


# ---------------------------------------------------------------- bad files


def _bad_files(folder: Path) -> None:
    (folder / "empty.csv").write_text("")
    (folder / "header.csv").write_text("a,b,label\n")
    (folder / "ok.csv").write_text("a,b,label\n" + "1,2,x\n3,4,y\n" * 5)
    (folder / "one-class.csv").write_text("a,label\n" + "1,x\n" * 6)
    (folder / "mess.csv").write_text("a,b,label\n" + "1,2,x\n3,4,y\n" * 3 + "5,n/k,x\n")
    (folder / "ids.csv").write_text("id,a,label\n" + "".join(
        f"user{i},{i},{'xy'[i % 2]}\n" for i in range(12)))
    (folder / "ragged.csv").write_text("a,b,label\n1,2,x\n3,y\n")
    (folder / "regress.csv").write_text("a,price\n1,2.5\n2,3.75\n")
    (folder / "latin1.csv").write_bytes("a,label\n1,caf\xe9\n".encode("latin-1"))
    rng = np.random.default_rng(0)
    np.savez(folder / "no-y.npz", x=rng.normal(size=(10, 2)), labels=np.arange(10) % 2)
    np.savez(folder / "half-test.npz", x=rng.normal(size=(10, 2)), y=np.arange(10) % 2,
             x_test=rng.normal(size=(4, 2)))
    np.savez(folder / "ok.npz", x=rng.normal(size=(20, 2)), y=np.arange(20) % 2)
    (folder / "text.npz").write_text("x,y\n1,2\n")
    (folder / "empty.npz").write_bytes(b"")
    (folder / "notes.txt").write_text("hello")
    _image_folder(folder / "one-class" / "only", {"a": (0, 0, 0)})
    _image_folder(folder / "sizes", {"a": (0, 0, 0), "b": (9, 9, 9)})
    broken = _image_folder(folder / "broken", {"a": (0, 0, 0), "b": (9, 9, 9)})
    (broken / "b" / "2.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a PNG")
    (folder / "no-images" / "a").mkdir(parents=True)
    (folder / "no-images" / "b").mkdir()
    (folder / "no-images" / "a" / "readme.txt").write_text("hi")


BAD = [
    ("empty.csv", (), "empty.csv is empty"),
    ("header.csv", ("--target", "label"), "header.csv has a header but no data rows"),
    ("ok.csv", (), "ok.csv: a CSV file needs the column of class labels, --target COLUMN "
                   "(the target option); columns: a, b, label"),
    ("ok.csv", ("--target", "species"), "ok.csv has no column 'species'; columns: a, b, label"),
    ("one-class.csv", ("--target", "label"),
     "one-class.csv: the target column 'label' holds 1 class ('x'); need at least 2"),
    ("mess.csv", ("--target", "label"),
     "mess.csv: column 'b' is numeric but holds 'n/k' on line 8; fix that value"),
    ("ids.csv", ("--target", "label"),
     "ids.csv: column 'id' is neither numeric nor a category: it holds a different value in "
     "every row"),
    ("ragged.csv", ("--target", "label"), "ragged.csv, line 3: 2 fields, but the header has 3"),
    ("regress.csv", ("--target", "price"),
     "regress.csv: the target column 'price' holds '2.5' on line 2; class labels are integers "
     "or text"),
    ("latin1.csv", ("--target", "label"), "latin1.csv is not UTF-8 text"),
    ("no-y.npz", (), "no-y.npz holds no array 'y' (it holds: x, labels)"),
    ("half-test.npz", (), "half-test.npz holds x_test without its partner"),
    ("text.npz", (), "text.npz is not a .npz file written by numpy"),
    ("empty.npz", (), "empty.npz is empty"),
    ("ok.npz", ("--target", "y"), "unknown option(s) for the .npz file"),
    ("missing.npz", (), "data file"),
    ("notes.txt", (), "notes.txt: cannot read .txt files as data"),
    ("one-class", (), "one-class holds 1 class folder (only); an image folder needs one "
                      "sub-folder of images per class, at least 2"),
    ("sizes", (), "sizes: images differ in size (a/0.png is 10x12, a/1.jpg 14x9); pass "
                  "--image-size N or HxW"),
    ("sizes", ("--image-size", "0x4"), "image size must be N or HxW with positive integers"),
    ("broken", ("--image-size", "8"), "2.png: not a readable image"),
    ("no-images", (), "no-images/a holds no PNG or JPEG images"),
    ("imagenet", (), "unknown dataset 'imagenet'; available: digits"),
]


@pytest.mark.parametrize(("name", "extra", "expect"), BAD,
                         ids=[f"{n} {' '.join(e)}".strip() for n, e, _ in BAD])
def test_a_bad_file_is_one_line_and_leaves_nothing(name, extra, expect, tmp_path,
                                                   monkeypatch) -> None:
    _bad_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = set(tmp_path.rglob("*"))
    code, err = _cli(["search", "--data", name, *extra, "--budget", "2trials",
                      "--trial-budget", "1ep", "--searcher", "random", "--no-progress"])
    assert code == 2
    assert err.startswith("nas: error: ") and err.count("\n") == 1, err
    assert expect in err, err
    if name == "missing.npz":
        assert f"{tmp_path / 'missing.npz'} not found" in err
    assert set(tmp_path.rglob("*")) == before  # no runs/, no journal


def test_the_python_api_raises_the_same_user_error(tmp_path) -> None:
    _bad_files(tmp_path)
    with pytest.raises(UserError, match="holds 1 class"):
        nas.search("residual-mlp", str(tmp_path / "one-class.csv"), "random", "2trials",
                   data_options={"target": "label"}, storage=tmp_path / "s.db", progress=False)
    assert not (tmp_path / "s.db").exists()


# ---------------------------------------------------------------- a search, and its resume


def test_cli_searches_a_relative_npz_and_journals_its_absolute_path(tmp_path,
                                                                    monkeypatch) -> None:
    (tmp_path / "data").mkdir()
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "data" / "tiny.npz", x=rng.normal(size=(40, 4)) + np.arange(40)[:, None]
             % 2, y=np.arange(40) % 2)
    monkeypatch.chdir(tmp_path)
    code, err = _cli(["search", "--data", "data/tiny.npz", "--budget", "2trials",
                      "--trial-budget", "1ep", "--searcher", "random", "--space",
                      "residual-mlp", *SMALL, "--name", "tiny", "--no-progress"])
    assert code == 0, err
    view = JournalView.load(tmp_path / "runs" / "tiny.db")
    assert view.settings.data.name == str(tmp_path / "data" / "tiny.npz")
    assert view.settings.data.options["fingerprint"].startswith("sha256:")
    assert [r.status.value for r in view.records] == ["ok", "ok"]


class _StopAfterFirst(Callback):
    """Ctrl-C right after the first trial is journaled."""

    def on_trial_end(self, trial: object, result: object, best: object, ledger: object) -> None:
        raise KeyboardInterrupt


def test_resume_reloads_the_csv_and_refuses_a_changed_or_vanished_one(tmp_path,
                                                                      monkeypatch) -> None:
    path, db = tmp_path / "flowers.csv", tmp_path / "s.db"
    path.write_text(CSV)
    with pytest.raises(KeyboardInterrupt):
        nas.search(spaces.residual_mlp(width=(16, 32), n_blocks=1), str(path), "random",
                   "3trials", trial_budget="1ep", storage=db, progress=False,
                   data_options={"target": "species", "seed": 3}, callbacks=[_StopAfterFirst()])
    settings = JournalView.load(db).settings
    assert settings.data.name == str(path)
    assert {k: v for k, v in settings.data.options.items() if k != "fingerprint"} == \
        {"target": "species", "seed": 3}
    monkeypatch.chdir(tmp_path.parent)  # the journal's path is absolute: any folder resumes

    path.write_text(CSV.replace("61,", "62,"))
    code, err = _cli(["resume", str(db), "--no-progress"])
    assert code == 2 and err.count("\n") == 1, err
    assert f"cannot reload the data of {db}: {path} has changed since the search started" in err
    path.unlink()
    code, err = _cli(["resume", str(db), "--no-progress"])
    assert code == 2 and err.count("\n") == 1, err
    assert f"cannot reload the data of {db}: data file {path} not found" in err

    path.write_text(CSV)
    code, err = _cli(["resume", str(db), "--no-progress"])
    assert code == 0, err
    view = JournalView.load(db)
    assert view.state == "finished" and len([r for r in view.records if r.result]) == 3
    assert view.settings.data.sizes == settings.data.sizes


def test_nas_datasets_says_a_path_works(capsys) -> None:
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "digits" in out and ".npz" in out and ".csv file with --target" in out
    assert "--image-size" in out
