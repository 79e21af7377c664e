"""End to end on the 574 shared MEDEC notes: the pipeline keeps exactly what a scripted verifier knows."""
from __future__ import annotations

from pathlib import Path

import pytest

from chat_stub import StubServer
from medcorr.medec.io import read_medec
from medcorr.medec.run import RunStats
from medcorr.medec.score import score_submission
from medec_oracle import (OracleScript, build, claim_sentences, expected_accuracy, is_right, localisation_bound,
                          submission, verifier_config)

MEDEC = Path(__file__).resolve().parents[2] / "shared" / "medec" / "MEDEC-MS-ValidationSet-with-GroundTruth-and-ErrorType.csv"

pytestmark = [pytest.mark.medec, pytest.mark.slow,
              pytest.mark.skipif(not MEDEC.is_file(), reason=f"needs {MEDEC}")]


@pytest.fixture(scope="module")
def records():
    return read_medec(MEDEC)


@pytest.fixture(scope="module")
def shown(records):
    return claim_sentences(build(None), records, 2)


def run(records, verifier, top_k=2, stats=None):
    result = score_submission(records, submission(build(verifier, top_k), records, stats))
    return result.flag_accuracy, result.sentence_accuracy


def test_a_perfect_verifier_reaches_the_localisation_bound_and_a_rerun_is_answered_from_the_cache(
        records, shown, tmp_path):
    server = StubServer(OracleScript(records, 1.0))
    try:
        stats = RunStats()
        first = run(records, verifier_config(server, cache_dir=str(tmp_path)), stats=stats)
        assert first == (localisation_bound(records, shown),) * 2
        assert server.calls == len(records) and stats.verifier["calls"] == len(records)
        again = RunStats()
        assert run(records, verifier_config(server, cache_dir=str(tmp_path)), stats=again) == first
        assert server.calls == len(records) and again.verifier["calls"] == 0
        assert again.verifier["cache_hits"] == len(records)
    finally:
        server.close()


def test_a_partly_right_verifier_gives_exactly_the_accuracy_its_answers_allow(records, shown):
    server = StubServer(OracleScript(records, 0.7))
    try:
        assert run(records, verifier_config(server)) == pytest.approx(expected_accuracy(records, shown, 0.7))
    finally:
        server.close()


def test_a_vote_of_three_partly_right_verifiers_follows_the_majority_note_by_note(records, shown):
    servers = [StubServer(OracleScript(records, 0.7, salt=str(n))) for n in range(3)]
    try:
        voting = {"@medcorr_verifiers": "medcorr.VotingVerifier.v1",
                  "verifiers": {f"m{n}": verifier_config(server) for n, server in enumerate(servers)}}
        flag, sentence = run(records, voting)
    finally:
        for server in servers:
            server.close()
    majority_right = [sum(is_right(r.text_id, 0.7, str(n)) for n in range(3)) >= 2 for r in records]
    expected = sum(right == (r.error_flag != 1 or r.error_sentence_id in shown[r.text_id])
                   for r, right in zip(records, majority_right)) / len(records)
    assert flag == pytest.approx(expected)
    assert flag > expected_accuracy(records, shown, 0.7)[0]  # three 70 % verifiers beat one
