"""`kerazoo weights ...`: list, import, verify, fetch; errors are one line."""

import json

from conftest import (
    ServeDirectory,
    assert_one_line_error,
    cli_json,
    copy_weights,
    offline_manifest,
    run_cli,
    served_manifest,
)


def test_cli_weights_commands(weights_env, generated, tmp_path):
    src = generated["root"] / generated["files"]["xception_notop"]["file"]
    listed = json.loads(run_cli("weights", "list", "--json").output)
    assert {r["name"]: r["present"] for r in listed}["xception_notop"] is False

    result = run_cli("weights", "import", str(src), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["verified"] is True

    listed = {r["name"]: r for r in json.loads(run_cli("weights", "list", "--json").output)}
    assert listed["xception_notop"]["present"] and listed["xception_notop"]["verified"]
    assert listed["xception_notop"]["where"] == "keras cache"

    for target in ("xception_notop", str(src)):
        result = run_cli("weights", "verify", target, "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)[0]["verified"] is True

    bad = tmp_path / "bad.h5"
    bad.write_text("nope")
    for args in (
        ["weights", "verify", str(bad)],
        ["weights", "import", str(bad)],
        ["weights", "verify", "inception_v3"],
        ["weights", "fetch", "nope"],
    ):
        result = run_cli(*args)
        assert result.exit_code == 2, (args, result.output)
        assert result.output.startswith("kerazoo: error: ") and result.output.count("\n") == 1
        assert "Traceback" not in result.output


def test_cli_fetch_offline_is_one_line(weights_env, generated, monkeypatch, tmp_path):
    offline_manifest(monkeypatch, tmp_path, generated["files"])
    result = run_cli("weights", "fetch", "xception_notop", "--dir", str(tmp_path / "t"))
    assert result.exit_code == 2
    # stdout shows the download attempt; the error is one line on stderr.
    assert result.stderr.startswith("kerazoo: error: ") and result.stderr.count("\n") == 1
    assert "kerazoo weights import" in result.stderr
    assert list((tmp_path / "t").iterdir()) == []


def test_cli_fetch_succeeds_into_a_dir_and_again_when_present(
    weights_env, generated, tmp_path, monkeypatch
):
    target = tmp_path / "into"
    with ServeDirectory(generated["root"]) as server:
        served_manifest(generated, server.url, tmp_path, monkeypatch)
        first = run_cli("weights", "fetch", "xception_notop", "--dir", target, "--json")
        assert first.exit_code == 0, first.output
        fetched = json.loads(first.stdout)
        assert fetched["verified"] and fetched["path"] == str(
            target / generated["files"]["xception_notop"]["file"]
        )
        again = run_cli("weights", "fetch", "xception_notop", "--dir", target, "--json")
        assert again.exit_code == 0 and json.loads(again.stdout) == fetched
        assert server.requests == 1  # already present: verified, not downloaded again
    assert sorted(p.name for p in target.iterdir()) == [
        generated["files"]["xception_notop"]["file"]
    ]


def test_cli_verify_without_a_target_checks_every_file_present(weights_env, generated):
    assert cli_json("weights", "verify") == []
    copy_weights(generated, "xception_notop", weights_env["cache"])
    rows = cli_json("weights", "verify")
    assert [(r["name"], r["verified"]) for r in rows] == [("xception_notop", True)]
    bad = copy_weights(generated, "inception_v3_notop", weights_env["user"])
    bad.write_bytes(bad.read_bytes()[:1000])
    assert_one_line_error(run_cli("weights", "verify"), "truncated or corrupt")
