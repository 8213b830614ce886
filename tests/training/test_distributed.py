"""Training on several devices or machines: strategies by name, TF_CONFIG, MirroredStrategy on
two logical CPUs, MultiWorkerMirroredStrategy with two worker processes on 127.0.0.1."""

import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the worker module beside this file

import mwms_worker as worker  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from forecast.errors import ConfigError  # noqa: E402
from forecast.training import (  # noqa: E402
    TrainConfig,
    as_config,
    distributed,
    fit,
    make_strategy,
    read_tf_config,
    strategy_name,
    worker_role,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
WORKER_TIMEOUT = 150  # seconds; a hung collective fails the test instead of blocking the suite


def _tf_config(workers, index, job="worker"):
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": job, "index": index}})


# -- names and TF_CONFIG ----------------------------------------------------------------------


def test_default_strategy_is_none_and_unknown_names_are_config_errors():
    assert make_strategy("default") is None
    assert strategy_name(None) == "default"
    assert worker_role(None).is_chief and worker_role(None).workers == 1
    with pytest.raises(ConfigError, match=r"train.strategy must be one of"):
        make_strategy("horovod")
    with pytest.raises(ConfigError, match=r"strategy"):
        as_config({"strategy": "horovod"})
    assert TrainConfig().strategy == "default"


def test_missing_tf_config_names_the_variable(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match=r"TF_CONFIG environment variable, which is not set"):
        make_strategy("multi_worker")


@pytest.mark.parametrize(
    "text, problem",
    [
        ("{not json", r"not valid JSON"),
        ('["worker"]', r"JSON object"),
        ('{"task": {"type": "worker", "index": 0}}', r"needs 'cluster'"),
        ('{"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}',
         r"cluster jobs \['ps'\]"),
        ('{"cluster": {"worker": ["nohostport"]}, "task": {"type": "worker", "index": 0}}',
         r"'host:port'"),
        ('{"cluster": {"worker": ["a:1", "b:1"]}}', r"needs 'task'"),
        ('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 2}}',
         r"task.index must be an integer from 0 to 1"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}',
         r"task.type must be one of"),
    ],
)
def test_malformed_tf_config_is_a_config_error(monkeypatch, text, problem):
    monkeypatch.setenv("TF_CONFIG", text)
    with pytest.raises(ConfigError, match=problem) as info:
        make_strategy("multi_worker")
    assert "TF_CONFIG" in str(info.value)


def test_roles_read_from_tf_config():
    two = ["127.0.0.1:1", "127.0.0.1:2"]
    assert read_tf_config({"TF_CONFIG": _tf_config(two, 0)}) == distributed.ClusterRole(
        "worker", 0, 2, True)
    assert not read_tf_config({"TF_CONFIG": _tf_config(two, 1)}).is_chief
    with_chief = json.dumps({"cluster": {"chief": ["c:1"], "worker": two},
                             "task": {"type": "worker", "index": 0}})
    role = read_tf_config({"TF_CONFIG": with_chief})
    assert (role.is_chief, role.workers) == (False, 3)


def test_multi_worker_after_tensorflow_started_says_so(monkeypatch):
    """This process has run TensorFlow already: creating the strategy now cannot work."""
    tf.constant(1.0) + 1.0
    monkeypatch.setattr(distributed, "_multi_worker_strategy", None)
    monkeypatch.setenv("TF_CONFIG", _tf_config(["127.0.0.1:1", "127.0.0.1:2"], 0))
    with pytest.raises(ConfigError, match=r"before TensorFlow runs anything"):
        make_strategy("multi_worker")


def test_pipeline_yaml_and_set_override_carry_the_strategy(tmp_path):
    from forecast.pipelines.spec import load_pipeline

    path = tmp_path / "p.yaml"
    path.write_text(textwrap.dedent("""
        name: p
        data: {path: data.csv, targets: [y]}
        window: {horizon: 4, lookback: 8}
        train: {epochs: 1, strategy: mirrored}
    """))
    assert load_pipeline(path).forecaster_config().train.strategy == "mirrored"
    spec = load_pipeline(path, overrides=["train.strategy=multi_worker"])
    assert spec.forecaster_config().train.strategy == "multi_worker"
    with pytest.raises(ConfigError, match=r"train.strategy"):
        load_pipeline(path, overrides=["train.strategy=gpus"])


# -- fit() and the strategy -------------------------------------------------------------------


def test_fit_needs_the_strategy_it_is_configured_with():
    train, val = worker.datasets()
    with pytest.raises(ConfigError, match=r"make_strategy\('mirrored'\).*strategy.scope"):
        fit(worker.tiny_model(), train, val, TrainConfig(strategy="mirrored", verbose=0))


def test_fit_rejects_a_model_built_outside_the_scope():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    train, val = worker.datasets()
    with pytest.raises(ConfigError, match=r"built outside the mirrored strategy's scope"):
        fit(worker.tiny_model(), train, val, TrainConfig(epochs=1, verbose=0),
            strategy=strategy)


def test_mirrored_on_one_cpu_warns_trains_and_records_it(caplog):
    with caplog.at_level(logging.INFO, logger="forecast.training"):
        strategy = make_strategy("mirrored")
    assert any("found one device" in r.getMessage() for r in caplog.records)
    with strategy.scope():
        model = worker.tiny_model()
    train, val = worker.datasets()
    config = TrainConfig(**{**worker.CONFIG, "epochs": 2}, strategy="mirrored")
    result = fit(model, train, val, config, strategy=strategy)
    assert (result.strategy, result.replicas, result.workers) == ("mirrored", 1, 1)
    assert result.history["loss"][-1] < result.history["loss"][0]


# -- MirroredStrategy on two logical CPUs (a subprocess: devices are set before TF starts) ------

_MIRRORED = textwrap.dedent(
    """
    import contextlib, json, logging, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
    sys.path.insert(0, sys.argv[1])
    import mwms_worker as w
    from forecast.forecaster import Forecaster
    from forecast.training import TrainConfig, fit, make_strategy

    logging.basicConfig(level=logging.INFO, format="LOG %(message)s")
    out = {}
    for name in ("default", "mirrored"):
        strategy = make_strategy(name)
        scope = strategy.scope() if strategy else contextlib.nullcontext()
        with scope:
            model = w.tiny_model()
        # two batches of 16 windows, 8 per replica (the uneven last 13 dropped: see the test)
        result = fit(model, *w.datasets(drop_remainder=True),
                     TrainConfig(**w.CONFIG, strategy=name), strategy=strategy)
        out[name] = {"history": result.history, "replicas": result.replicas,
                     "strategy": result.strategy,
                     "weights": [x.tolist() for x in model.get_weights()]}
    f = Forecaster({"horizon": w.H, "lookback": w.L, "calendar": False, "batch_size": w.BATCH,
                    "model": {"units": 4},
                    "train": {**w.CONFIG, "epochs": 3, "strategy": "mirrored"}})
    f.fit(*w.frames())
    out["forecaster"] = {
        "strategy": f.fit_result.strategy, "replicas": f.fit_result.replicas,
        "history": f.fit_result.history, "forecast": f.predict(w.frames()[1])["y"].tolist(),
        "detached": f.model.distribute_strategy is tf.distribute.get_strategy(),
    }
    print("RESULT " + json.dumps(out))
    """
)


def test_mirrored_on_two_logical_cpus_follows_the_one_device_trajectory():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-c", _MIRRORED, str(HERE)], capture_output=True,
                          text=True, timeout=WORKER_TIMEOUT, env=env, cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    result = json.loads(lines[0][len("RESULT "):])
    one, two = result["default"], result["mirrored"]
    assert (one["replicas"], two["replicas"], two["strategy"]) == (1, 2, "mirrored")
    assert "MirroredStrategy over 2 devices" in proc.stderr
    # Same seed, same unshuffled batches split evenly (8 + 8 windows; validation 8 + 8, 2 + 2):
    # the sum of the two replicas' gradients is the one-device gradient of the whole batch.
    # (An uneven split, e.g. 7 + 6, would differ slightly: Keras averages the replicas' means.)
    np.testing.assert_allclose(two["history"]["loss"], one["history"]["loss"], rtol=1e-5)
    np.testing.assert_allclose(two["history"]["val_loss"], one["history"]["val_loss"], rtol=1e-5)
    for a, b in zip(two["weights"], one["weights"], strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert two["history"]["loss"][-1] < 0.5 * two["history"]["loss"][0]
    forecaster = result["forecaster"]
    assert (forecaster["strategy"], forecaster["replicas"]) == ("mirrored", 2)
    assert forecaster["detached"]
    assert forecaster["history"]["loss"][-1] < forecaster["history"]["loss"][0]
    assert len(forecaster["forecast"]) == worker.H and np.all(np.isfinite(forecaster["forecast"]))


# -- MultiWorkerMirroredStrategy: two worker processes on 127.0.0.1 ---------------------------


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _run_workers(tmp_path, n=2):
    workers = [f"127.0.0.1:{port}" for port in _free_ports(n)]
    procs = []
    for index in range(n):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
               "TF_CONFIG": _tf_config(workers, index)}
        args = [sys.executable, str(HERE / "mwms_worker.py"), str(tmp_path / f"out{index}.json"),
                str(tmp_path / f"own{index}"), str(tmp_path / "shared")]
        procs.append(subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=WORKER_TIMEOUT)[0])
    except subprocess.TimeoutExpired:
        for proc in procs:
            proc.kill()
        pytest.fail(f"the workers did not finish in {WORKER_TIMEOUT} s (a hung collective?)")
    for index, (proc, output) in enumerate(zip(procs, outputs, strict=True)):
        assert proc.returncode == 0, f"worker {index} failed:\n{output[-4000:]}"
    return [json.loads((tmp_path / f"out{index}.json").read_text()) for index in range(n)]


def test_multi_worker_training_on_two_processes(tmp_path):
    chief, other = _run_workers(tmp_path)
    assert (chief["is_chief"], other["is_chief"]) == (True, False)

    # the data: each epoch's windows split between the workers, each window once, same steps
    for mine, theirs in zip(chief["shards"], other["shards"], strict=True):
        assert mine["steps"] == theirs["steps"] == 3
        assert sorted(mine["windows"] + theirs["windows"]) == list(range(worker.TRAIN_WINDOWS))
    assert chief["shards"][0]["windows"] != chief["shards"][1]["windows"]  # reshuffled

    # fit(): both workers end with the same weights and log the same losses
    assert chief["checksum"] == other["checksum"]
    assert chief["history"] == other["history"]
    assert (chief["strategy"], chief["replicas"], chief["workers"]) == ("multi_worker", 2, 2)
    losses = chief["history"]["loss"]
    assert losses[-1] < 0.5 * losses[0]
    # ... and the numbers of one process training on the same batches: the loop's global-batch
    # mean is exact, the 13-window last batch (7 + 6) included
    train, val = worker.datasets()
    model = worker.tiny_model()
    reference = fit(model, train, val, TrainConfig(**worker.CONFIG))
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(chief["history"][key], reference.history[key], rtol=1e-5)
    assert chief["weights_sum"] == pytest.approx(
        float(sum(np.abs(w).sum() for w in model.get_weights())), rel=1e-5)

    # only the chief writes checkpoints: its folder holds best.keras, the other worker's none
    assert chief["checkpoint_files"] == ["best.keras"]
    assert chief["checkpoint_path"] == str(tmp_path / "own0" / "best.keras")
    assert other["checkpoint_files"] is None and other["checkpoint_path"] is None

    # killed after epoch 2 and resumed from the chief's backup (weights and optimizer state):
    # epochs 3-5, and the very weights of the run that was not interrupted
    for run in (chief["resume"], other["resume"]):
        assert run["epochs"] == [3, 4, 5] and run["initial_epoch"] == 2
        assert run["checksum"] == chief["checksum"]
    np.testing.assert_allclose(chief["resume"]["history"]["loss"], losses[2:], rtol=1e-6)
    assert not (tmp_path / "shared" / "backup").exists()  # deleted by the finished run

    # the Forecaster: strategy recorded, identical weights, a forecast from the detached copy
    a, b = chief["forecaster"], other["forecaster"]
    assert (a["strategy"], a["replicas"]) == ("multi_worker", 2)
    assert a["checksum"] == b["checksum"] and a["forecast"] == b["forecast"]
    assert a["history"]["loss"][-1] < a["history"]["loss"][0]


# -- the command line ---------------------------------------------------------------------------


def _cli(argv, capsys):
    from forecast.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_cli_train_strategy_mirrored_records_it(synthetic_csv, capsys):
    code, out, err = _cli(
        ["train", str(synthetic_csv), "--target", "y", "--horizon", "4", "--lookback", "12",
         "--units", "4", "--epochs", "1", "--no-track", "--json", "--strategy", "mirrored"],
        capsys)
    assert code == 0, err
    training = json.loads(out)["training"]
    assert (training["strategy"], training["replicas"], training["workers"]) == (
        "mirrored", 1, 1)


def test_cli_train_strategy_errors(synthetic_csv, capsys, monkeypatch):
    base = ["train", str(synthetic_csv), "--target", "y", "--horizon", "4", "--no-track"]
    code, _, err = _cli(base + ["--strategy", "gpus"], capsys)
    assert code == 2 and "train.strategy" in err
    monkeypatch.delenv("TF_CONFIG", raising=False)
    code, _, err = _cli(base + ["--strategy", "multi_worker"], capsys)
    assert code == 2 and "TF_CONFIG" in err
    monkeypatch.setenv("TF_CONFIG", _tf_config(["127.0.0.1:1", "127.0.0.1:2"], 0))
    code, _, err = _cli(["train", str(synthetic_csv), "--target", "y", "--strategy",
                         "multi_worker", "--register", "m"], capsys)
    assert code == 2 and "--register cannot be combined with --strategy multi_worker" in err
