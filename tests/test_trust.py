"""Signed experiment state: only folders this user's ecgtune signed are resumed (no Ray needed)."""

import os
import stat

import pytest

from ecgtune import trust
from ecgtune.errors import EcgtuneError


@pytest.fixture()
def experiment(tmp_path):
    folder = tmp_path / "runs" / "exp"
    (folder / "plain_cnn_1").mkdir(parents=True)
    (folder / "search.json").write_text('{"families": ["plain_cnn"]}')
    (folder / "tuner.pkl").write_bytes(b"pickle bytes")
    (folder / "experiment_state-2026.json").write_text("{}")
    (folder / "plain_cnn_1" / "params.pkl").write_bytes(b"trial pickle")
    (folder / "leaderboard.csv").write_text("rank\n")  # an output, not state: may change freely
    return folder


def test_a_signed_folder_verifies_and_outputs_may_change(experiment):
    trust.sign_state(experiment)
    (experiment / "leaderboard.csv").write_text("rank\n1\n")
    trust.verify_state(experiment)
    assert trust.is_signed(experiment)


def test_the_key_is_made_once_and_readable_by_its_user_alone(experiment):
    trust.sign_state(experiment)
    mode = stat.S_IMODE(os.stat(trust.key_path()).st_mode)
    assert mode == 0o600
    key = trust.key_path().read_text()
    trust.sign_state(experiment)
    assert trust.key_path().read_text() == key


@pytest.mark.parametrize("tamper, problem", [
    (lambda folder: (folder / "tuner.pkl").write_bytes(b"payload"), "changed since ecgtune signed it"),
    (lambda folder: (folder / "searcher-state-2026.pkl").write_bytes(b"payload"), "is not signed"),
    (lambda folder: (folder / "plain_cnn_1" / "params.pkl").unlink(), "is missing"),
    (lambda folder: (folder / "search.json").write_text('{"families": ["vgg_cnn"]}'), "changed"),
])
def test_a_changed_added_or_removed_state_file_is_refused(experiment, tamper, problem):
    trust.sign_state(experiment)
    tamper(experiment)
    with pytest.raises(EcgtuneError, match=problem) as refusal:
        trust.verify_state(experiment)
    assert trust.TRUST_FLAG in str(refusal.value)


def test_a_symlinked_state_file_is_refused(experiment, tmp_path):
    trust.sign_state(experiment)
    (experiment / "tuner.pkl").unlink()
    (tmp_path / "elsewhere.pkl").write_bytes(b"pickle bytes")
    (experiment / "tuner.pkl").symlink_to(tmp_path / "elsewhere.pkl")
    with pytest.raises(EcgtuneError, match="not a plain file"):
        trust.verify_state(experiment)


def test_an_unsigned_folder_is_refused_until_the_user_vouches_for_it(experiment):
    with pytest.raises(EcgtuneError, match="not signed"):
        trust.verify_state(experiment)
    trust.sign_state(experiment)  # what --trust-state does
    trust.verify_state(experiment)


def test_another_users_signature_is_refused(experiment, tmp_path, monkeypatch):
    trust.sign_state(experiment)
    monkeypatch.setenv("ECGTUNE_KEY_FILE", str(tmp_path / "other" / "state.key"))
    with pytest.raises(EcgtuneError, match="not signed with this user's key"):
        trust.verify_state(experiment)


def test_a_forged_listing_is_refused(experiment):
    trust.sign_state(experiment)
    signature = (experiment / trust.SIGNATURE_FILE).read_text()
    (experiment / trust.SIGNATURE_FILE).write_text(signature.replace('"tuner.pkl": "', '"tuner.pkl": "0'))
    with pytest.raises(EcgtuneError, match="not signed with this user's key"):
        trust.verify_state(experiment)
