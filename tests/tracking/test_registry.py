"""Tests of forecast/tracking/registry.py (records only) and `forecast registry` on real
temporary MLflow stores; the fixtures are in tests/registry_helpers.py."""

import json

import pytest

from forecast.errors import ConfigError, ModelError
from forecast.tracking import registry
from tests.registry_helpers import (
    aliases,
    cli,
    log_model,
)


def test_registering_records_a_challenger_and_crowns_nobody(store, forecasters):
    uri, run_id = log_model(forecasters["fair"])
    first = registry.register_version(uri, "synthetic", run_id=run_id, tags={"data": "s.csv"})
    assert int(first.version) == 1 and first.run_id == run_id
    assert first.tags["data"] == "s.csv"
    # no champion without a backtest: promotion (forecast.evaluation.promotion) decides
    assert aliases("synthetic") == {"challenger": 1}
    assert registry.champion_version("synthetic") is None
    assert registry.champion_history("synthetic") == []

    uri, run_id = log_model(forecasters["poor"])
    second = registry.register_version(uri, "synthetic")
    assert int(second.version) == 2 and second.run_id == run_id  # read off the logged model
    assert aliases("synthetic") == {"challenger": 2}

    config = registry.forecaster_config("synthetic", 2)
    assert config["model"]["units"] == 2 and config["train"]["learning_rate"] == 1e-5

    assert registry.make_champion("synthetic", 1) is None
    assert aliases("synthetic") == {"champion": 1, "challenger": 2}
    rows = registry.list_versions("synthetic")
    assert [(r["version"], r["aliases"], r["run_id"], r["kind"], r["score"]) for r in rows] == [
        (2, ["challenger"], run_id, "network", None),
        (1, ["champion"], first.run_id, "network", None)]
    assert rows[0]["created"] >= rows[1]["created"]

    with pytest.raises(ModelError, match="no previous champion.*version 1"):
        registry.rollback("synthetic")
    with pytest.raises(ConfigError, match="no registered model 'other'; registered models: "
                                          "synthetic"):
        registry.list_versions("other")
    with pytest.raises(ConfigError, match="'synthetic' has no version 7; its versions: 1, 2"):
        registry.promote("synthetic", 7)


def test_cli_list_promote_rollback(store, forecasters, capsys):
    for name in ("fair", "poor"):
        registry.register_version(log_model(forecasters[name])[0], "synthetic")
    registry.make_champion("synthetic", 1)

    code, out, _ = cli(capsys, "registry", "list", "synthetic")
    assert code == 0
    assert "champion" in out and "challenger" in out and "network" in out
    assert "champion history: v1" in out

    code, out, _ = cli(capsys, "registry", "promote", "synthetic", "2")
    assert code == 0 and "version 2 promoted by hand over version 1" in out
    assert aliases("synthetic") == {"champion": 2}

    code, out, _ = cli(capsys, "registry", "list", "synthetic", "--json")
    rows = json.loads(out)
    assert [(r["version"], r["aliases"]) for r in rows] == [(2, ["champion"]), (1, [])]
    assert rows[0]["tags"]["promotion.decision"] == "manual"
    assert rows[0]["tags"]["previous_champion"] == "1"

    code, out, _ = cli(capsys, "registry", "rollback", "synthetic")
    assert code == 0 and "champion is version 1 again" in out
    assert aliases("synthetic") == {"champion": 1}

    code, out, err = cli(capsys, "registry", "rollback", "synthetic")
    assert code == 2 and "no previous champion" in err and "Traceback" not in err

    code, out, err = cli(capsys, "registry", "list", "nope")
    assert code == 2
    assert err.count("error:") == 1 and "no registered model 'nope'" in err
    assert "registered models: synthetic" in err and "Traceback" not in err

    code, out, err = cli(capsys, "registry", "promote", "synthetic", "9")
    assert code == 2 and "has no version 9; its versions: 1, 2" in err
