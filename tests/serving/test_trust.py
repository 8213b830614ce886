"""Only the model code this version of forecast writes runs when a model is loaded.

A model from code executes its ``model_code.py`` on load. ``forecast.load``, ``forecast
predict`` and ``forecast serve`` verify the code file (SHA-256, read from the MLmodel file)
before MLflow loads anything, for local folders and for ``runs:/``/``models:/`` URIs alike.
"""

from __future__ import annotations

import shutil

import pytest
import yaml

import forecast
from forecast.cli import main
from forecast.errors import ModelError
from forecast.serving.load import MODEL_CODE, model_code_sha256, verify_model_folder
from tests.servers import free_port
from tests.serving.conftest import HORIZON

REFUSED = "differs from the code this version of forecast writes"


@pytest.fixture(scope="module")
def model_folder(logged, store, tmp_path_factory):
    """A local copy of the logged model (as `mlflow artifacts download` leaves it)."""
    import mlflow.artifacts

    from tests.serving.conftest import tracking_store

    with tracking_store(store.uri):
        return mlflow.artifacts.download_artifacts(
            artifact_uri=logged.runs_uri, dst_path=str(tmp_path_factory.mktemp("model")))


@pytest.fixture
def tampered(model_folder, tmp_path):
    """A copy whose model_code.py also writes a marker file when it runs."""
    copy = tmp_path / "tampered"
    shutil.copytree(model_folder, copy)
    marker = tmp_path / "pwned"
    with open(copy / "model_code.py", "a") as code:
        code.write(f"\nimport os; os.system('touch {marker}')\n")
    return copy, marker


@pytest.fixture
def recent_csv(history, tmp_path):
    path = tmp_path / "recent.csv"
    history.raw.iloc[150:200].to_csv(path, index=False)
    return path


def _run(argv) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return exit_info.value.code


def test_the_logged_code_is_forecasts_own(model_folder):
    code = verify_model_folder(model_folder)
    assert code.read_bytes() == MODEL_CODE.read_bytes()
    assert len(model_code_sha256()) == 64


def test_predict_refuses_a_tampered_folder_and_runs_nothing(tampered, recent_csv, capsys):
    copy, marker = tampered

    code = _run(["predict", "--model", str(copy), "--csv", str(recent_csv)])

    err = " ".join(capsys.readouterr().err.split())
    assert code == 2
    assert f"{copy}: its model code ({copy / 'model_code.py'}) {REFUSED} (sha256 " in err
    assert "refusing to run it. Re-log the model with this version" in err
    assert "Traceback" not in err
    assert not marker.exists()


def test_predict_takes_the_untampered_folder(model_folder, recent_csv, tmp_path):
    out = tmp_path / "forecast.csv"
    assert _run(["predict", "--model", str(model_folder), "--csv", str(recent_csv),
                 "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == HORIZON + 1


def test_load_and_serve_refuse_it_too(tampered, capsys):
    copy, marker = tampered
    with pytest.raises(ModelError, match=REFUSED):
        forecast.load(str(copy))
    assert _run(["serve", str(copy), "--port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert REFUSED in " ".join(err.split()) and "serving" not in err
    assert not marker.exists()


def test_a_tampered_registered_version_is_refused(tampered, store):
    """models:/ URIs: the artifacts are downloaded, checked, and only then loaded."""
    from mlflow import MlflowClient

    from tests.serving.conftest import tracking_store

    copy, marker = tampered
    with tracking_store(store.uri):
        client = MlflowClient()
        client.create_registered_model("tampered")
        version = client.create_model_version("tampered", source=str(copy))
        with pytest.raises(ModelError, match=REFUSED) as caught:
            forecast.load(f"models:/tampered/{version.version}")
    assert f"models:/tampered/{version.version}/model_code.py" in str(caught.value)
    assert not marker.exists()


@pytest.mark.parametrize("change, words", [
    ({"code": "code"}, "sets code in the python_function flavour"),
    ({"loader_module": "mlflow.pyfunc.model"}, "loads it with 'mlflow.pyfunc.model'"),
    ({"model_code_path": None}, "names no model code file"),
])
def test_an_edited_mlmodel_is_refused(model_folder, tmp_path, change, words):
    copy = tmp_path / "edited"
    shutil.copytree(model_folder, copy)
    meta = yaml.safe_load((copy / "MLmodel").read_text())
    meta["flavors"]["python_function"].update(change)
    (copy / "MLmodel").write_text(yaml.safe_dump(meta))
    (copy / "code").mkdir()
    with pytest.raises(ModelError, match="refusing to run it") as caught:
        forecast.load(str(copy))
    assert words in str(caught.value)


def test_predict_checks_out_before_loading_the_model(recent_csv, tmp_path, capsys):
    folder = tmp_path / "somewhere"
    folder.mkdir()
    a_file = tmp_path / "file.csv"
    a_file.write_text("x\n")
    # A model that does not exist: the --out check must come first.
    for out, words in [(folder, "is a folder"), (a_file / "forecast.csv", "is a file")]:
        code = _run(["predict", "--model", "models:/no-such-model@champion", "--csv",
                     str(recent_csv), "--out", str(out)])
        err = " ".join(capsys.readouterr().err.split())
        assert code == 2
        assert err.startswith(f"error: --out {out}: ") and words in err
        assert "no-such-model" not in err and "Traceback" not in err
