"""Training settings are declared once (rnnplay.config); the CLI, the app's form and sweeps derive from it."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from rnnplay import config as C
from rnnplay.errors import UserError


def _parser(names=None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    C.add_setting_arguments(p, names)
    return p


def test_every_flagged_field_becomes_a_flag_with_its_declared_default_in_the_help():
    help_text = _parser().format_help()
    for s in C.specs():
        if s.flag:
            assert s.option in help_text
    assert "--betas" not in help_text  # declared flag=False
    assert "(default 2000)" in help_text and "(default 0.002)" in help_text


def test_parsed_flags_are_exactly_the_given_settings():
    args = _parser().parse_args(["--seq-len", "16", "--lr", "3e-3", "--embed", "auto"])
    assert C.given_settings(args) == {"seq_len": 16, "lr": 3e-3}  # embed=auto is None: not given
    config = C.TrainConfig(**C.given_settings(args))
    assert config.seq_len == 16 and config.lr == 3e-3 and config.hidden == C.TrainConfig().hidden


@pytest.mark.parametrize("argv, message", [
    (["--steps", "0"], "at least 1"),
    (["--lr", "0"], "above 0"),
    (["--dropout", "1"], "below 1"),
    (["--seed", str(2**64)], "at most"),
    (["--hidden", "x"], "not an integer"),
    (["--clip", "nan"], "finite"),
])
def test_out_of_range_flags_are_refused_by_argparse(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        _parser().parse_args(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_a_config_built_in_code_is_checked_by_the_same_declaration():
    with pytest.raises(UserError, match="--batch-size must be at least 1"):
        C.TrainConfig(batch_size=0)
    with pytest.raises(UserError, match="--lr-schedule choose one of"):
        C.TrainConfig(lr_schedule="linear")
    with pytest.raises(UserError, match="--out is empty"):
        C.TrainConfig(out="  ")


def test_fixed_on_resume_and_form_settings_come_from_the_declaration():
    assert set(C.FIXED_ON_RESUME) == {"hidden", "layers", "cell", "embed", "seq_len", "batch_size", "seed", "lr_schedule"}
    assert [s.name for s in C.FORM_SETTINGS] == ["steps", "hidden", "layers", "cell", "seq_len", "batch_size", "lr",
                                                 "dropout", "device", "seed"]
    saved = C.TrainConfig(hidden=32)
    C.check_resume_overrides(saved, {"lr": 1e-4, "hidden": 32})  # same value, or a run-time setting: fine
    with pytest.raises(UserError, match="--hidden 64 differs from the checkpoint's 32"):
        C.check_resume_overrides(saved, {"hidden": 64})


def test_sweep_assignments_parse_by_the_settings_type_and_bounds():
    assert C.parse_assignment("lr=1e-3,3e-3") == ("lr", [1e-3, 3e-3])
    assert C.parse_assignment("seq-len=16,32") == ("seq_len", [16, 32])
    assert C.parse_assignment("lr_schedule=constant,cosine") == ("lr_schedule", ["constant", "cosine"])
    for bad, message in (("lr", "NAME=V1"), ("hidden=0", "at least 1"), ("nope=1", "unknown setting"),
                         ("out=a.pt", "cannot be swept")):
        with pytest.raises(UserError, match=message):
            C.parse_assignment(bad)


def test_config_round_trips_and_reports_what_differs():
    a = C.TrainConfig(hidden=32, lr=1e-3)
    assert C.TrainConfig.from_dict({**a.to_dict(), "from_a_newer_version": 1}) == a
    assert a.differs(dataclasses.replace(a, lr=3e-3, seed=4)) == {"lr": (1e-3, 3e-3), "seed": (0, 4)}
