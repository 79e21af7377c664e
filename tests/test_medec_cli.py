"""``medcorr medec run|score`` and the runner's plumbing (sentence alignment, MEDEC ids, the format).

The runner tests use a tiny fake component that stores a Verdict in ``doc._.medcorr``: they check the
plumbing only, not the quality of any model. The real pipeline is exercised by the ``slow`` test at the end.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import medcorr.cli
from medcorr.finding import Evidence, Role, SourceKind, Status, ErrorType, Finding, Verdict
from medcorr.medec.io import read_medec, read_submission
from medcorr.medec.run import RunStats, make_medec_doc, run_medec

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "medec"
SHARED_VAL = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "medec"
    / "MEDEC-MS-ValidationSet-with-GroundTruth-and-ErrorType.csv"
)

#: trigger word -> replacement (None: flag without a proposal)
TRIGGERS = {"vancomycin": "nitrofurantoin", "pericarditis": None, "acyclovir": "valacyclovir"}


def _fake_verdict(doc) -> Verdict:
    sentences = list(doc.sents)
    for index, sentence in enumerate(sentences):
        for word, replacement in TRIGGERS.items():
            position = sentence.text.find(word)
            if position < 0:
                continue
            corrected = None if replacement is None else sentence.text.replace(word, replacement)
            start = sentence.start_char + position
            evidence = Evidence(SourceKind.VERIFIER, "scripted verifier", confidence=0.9)
            finding = Finding(start, start + len(word), word, ErrorType.PHARMACOTHERAPY, 0.9, index, Role.ERROR,
                              correction=replacement, corrected_sentence=corrected,
                              correction_source=None if replacement is None else evidence.name,
                              evidence=[evidence])
            return Verdict(Status.CHECKED, flag=True, score=0.9, error_sentence=index, source=evidence,
                           findings=[finding])
    return Verdict(Status.CHECKED, flag=False, score=0.1, error_sentence=-1,
                   source=Evidence(SourceKind.VERIFIER, "scripted verifier", confidence=0.1))


class FakeVerifier:
    """Counts one call per flagged note, with made-up token counts."""

    def __init__(self) -> None:
        self.calls = 0

    def stats(self) -> dict[str, int]:
        return {"calls": self.calls, "prompt_tokens": 500 * self.calls, "completion_tokens": 20 * self.calls}


class FakeMedcorr:
    """Stands in for the medcorr component: records the sentences it saw and stores a verdict."""

    def __init__(self, with_counter: bool) -> None:
        self.verifier = FakeVerifier() if with_counter else None
        self.seen: list[list[str]] = []

    def __call__(self, doc):
        self.seen.append([sentence.text for sentence in doc.sents])
        verdict = _fake_verdict(doc)
        if verdict.flag and self.verifier is not None:
            self.verifier.calls += 1
        doc._.medcorr = verdict
        return doc


@pytest.fixture
def fake_extension():
    """A plain ``Doc._.medcorr`` attribute for the fake, restoring whatever was registered before."""
    from spacy.tokens import Doc

    previous = Doc.get_extension("medcorr")
    Doc.set_extension("medcorr", default=None, force=True)
    yield
    if previous is None:
        Doc.remove_extension("medcorr")
    else:
        default, method, getter, setter = previous
        if getter is not None:  # spaCy accepts exactly one of default / method / getter
            Doc.set_extension("medcorr", getter=getter, setter=setter, force=True)
        elif method is not None:
            Doc.set_extension("medcorr", method=method, force=True)
        else:
            Doc.set_extension("medcorr", default=default, force=True)


def _fake_nlp(with_counter: bool = True):
    import spacy
    from spacy.language import Language

    if not Language.has_factory("medec_test_fake"):

        @Language.factory("medec_test_fake", default_config={"with_counter": True})
        def make_fake(nlp, name, with_counter: bool):
            return FakeMedcorr(with_counter)

    nlp = spacy.blank("en")
    nlp.add_pipe("medec_test_fake", name="medcorr", config={"with_counter": with_counter})
    return nlp


@pytest.fixture
def fake_nlp(fake_extension):
    return _fake_nlp()


def _compact(text: str) -> str:
    return "".join(text.split())


# ------------------------------------------------------------------------------------------ the runner


def test_docs_get_medec_sentence_boundaries(fake_nlp):
    records = read_medec(FIXTURES / "labeled.csv")
    for record in records[:4]:
        doc, boundaries = make_medec_doc(fake_nlp, record)
        assert [medec_id for _, medec_id in boundaries] == [s.id for s in record.sentences]
        assert [_compact(s.text) for s in doc.sents] == [_compact(s.text) for s in record.sentences]
        assert all(token.is_sent_start in (True, False) for token in doc)  # every token decided
    doc, boundaries = make_medec_doc(fake_nlp, records[4])  # fuzzy-aligned note keeps all four sentences
    assert len(list(doc.sents)) == 4
    assert list(doc.sents)[3].text == "Patient is prescribed oral acyclovir."


def test_sentence_inside_one_token_merges_into_the_previous(fake_nlp):
    from medcorr.medec.io import MedecRecord, MedecSentence
    from medcorr.medec.run import medec_sentence_id

    parts = ["Hb 9.1g/d", "L", "x done.", "Next one."]  # "L" and "x" both start inside the token "dLx"
    record = MedecRecord("t", "Hb 9.1g/dLx done. Next one.", [MedecSentence(i, p) for i, p in enumerate(parts)])
    doc, boundaries = make_medec_doc(fake_nlp, record)
    assert [s.text for s in doc.sents] == ["Hb 9.1g/", "dLx done.", "Next one."]
    assert [medec_id for _, medec_id in boundaries] == [0, 1, 3]
    assert [medec_sentence_id(boundaries, s.start) for s in doc.sents] == [0, 1, 3]
    stats = RunStats()
    run_medec(fake_nlp, [record], stats=stats)
    assert stats.collapsed_sentences == 1


def test_run_maps_sentences_to_medec_ids(fake_nlp):
    records = read_medec(FIXTURES / "labeled.csv") + read_medec(FIXTURES / "unlabeled.csv")
    stats = RunStats()
    lines = run_medec(fake_nlp, records, batch_size=2, stats=stats)
    formatted = [line.format() for line in lines]
    assert formatted == [
        'fx-0 1 2 "She is treated with oral nitrofurantoin for three days."',
        "fx-1 0 -1 NA",
        'FX-2 1 2 "He is diagnosed with acute pericarditis."',  # no proposal: original sentence
        "fx-3 0 -1 NA",
        'fx-4 1 3 "Patient is prescribed oral valacyclovir."',
        'u-1 1 3 "He is treated with oral nitrofurantoin."',  # MEDEC ids here start at 1
        "u-2 0 -1 NA",
    ]
    component = fake_nlp.get_pipe("medcorr")
    assert [len(seen) for seen in component.seen] == [len(r.sentences) for r in records]
    assert (stats.notes, stats.flagged, stats.flagged_without_proposal) == (7, 4, 1)
    assert stats.verifier == {"calls": 4, "prompt_tokens": 2000, "completion_tokens": 80}
    assert stats.verifier_per_note()["calls"] == pytest.approx(4 / 7)
    assert stats.to_dict()["verifier_per_note"]["prompt_tokens"] == pytest.approx(2000 / 7, abs=1e-3)


def test_run_without_proposal_as_na_and_without_counter(fake_extension):
    nlp = _fake_nlp(with_counter=False)
    stats = RunStats()
    lines = run_medec(nlp, read_medec(FIXTURES / "labeled.csv"), no_proposal="na", stats=stats)
    assert lines[2].format() == "FX-2 1 2 NA"
    assert stats.verifier is None and "verifier" not in stats.to_dict()


# ---------------------------------------------------------------------------------------------- CLI


@pytest.fixture
def cli(monkeypatch):
    """``medcorr.cli.main`` with only the medec subcommand registered (isolated from other modules)."""
    monkeypatch.setattr(medcorr.cli, "SUBCOMMAND_MODULES", ("medcorr.medec.cli",))
    return medcorr.cli.main


def test_medec_command_is_registered():
    assert "medcorr.medec.cli" in medcorr.cli.SUBCOMMAND_MODULES


def test_help_texts(cli, capsys):
    for argv in (["medec", "run", "--help"], ["medec", "score", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            cli(argv)
        assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--bertscore-model" in out and "composite" in out and "--no-proposal" in out


def test_cli_run_writes_submission(cli, fake_extension, monkeypatch, tmp_path, capsys):
    import medcorr.pipeline

    monkeypatch.setattr(medcorr.pipeline, "build_pipeline", lambda config=None, overrides=None: _fake_nlp())
    out = tmp_path / "sub.txt"
    code = cli(["medec", "run", "--input", str(FIXTURES / "labeled.csv"), "--output", str(out), "--limit", "3"])
    assert code == 0
    submission = read_submission(out)
    assert list(submission.lines) == ["fx-0", "fx-1", "FX-2"]
    err = capsys.readouterr().err
    assert "3 notes" in err and "verifier: 2 calls (0.67 per note), 333 prompt + 13 completion tokens per note" in err
    assert "vancomycin" not in err and "nitrofurantoin" not in err  # no note text in logs

    code = cli(["medec", "run", "--input", str(FIXTURES / "unlabeled.csv"), "--no-progress"])
    assert code == 0
    assert capsys.readouterr().out.splitlines()[0] == 'u-1 1 3 "He is treated with oral nitrofurantoin."'


@pytest.mark.parametrize(
    "argv, message",
    [
        (["medec", "run", "--input", "nope.csv"], "file not found"),
        (["medec", "run", "--input", str(FIXTURES / "labeled.csv"), "--limit", "0"], "--limit"),
        (["medec", "score", "--gold", str(FIXTURES / "unlabeled.csv"), "--pred", str(FIXTURES / "labeled.csv")],
         "Error Flag"),
        (["medec", "score", "--gold", str(FIXTURES / "handcalc.csv"), "--pred", "nope.txt"], "file not found"),
        (["medec", "score", "--gold", str(FIXTURES / "handcalc.csv"), "--pred", str(FIXTURES / "handcalc.csv"),
          "--bleurt-checkpoint", "no/such/dir"], "BLEURT checkpoint"),
    ],
)
def test_cli_usage_errors(cli, capsys, argv, message):
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("medcorr: error: ") and message in err and len(err.strip().splitlines()) == 1


def test_cli_score_json_and_report(cli, tmp_path, capsys):
    pred = tmp_path / "pred.txt"
    pred.write_text('h-a 1 0 "She is treated with oral nitrofurantoin for five days."\nh-b 0 -1 NA\n')
    report = tmp_path / "report.md"
    code = cli(["medec", "score", "--gold", str(FIXTURES / "handcalc.csv"), "--pred", str(pred),
                "--json", "--report", str(report)])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["texts"] == 5 and data["missing_predictions"] == 3
    assert data["error_flag_accuracy"] == pytest.approx(2 / 5)
    assert data["correction"]["pairs"] == {"scored": 1, "both_na": 1, "one_na": 0, "missing": 3}
    assert data["correction"]["metrics"]["bleurt"]["computed"] is False
    assert data["correction"]["aggregate"]["composite"] == pytest.approx((1.0 + 1) / 5, abs=1e-7)
    assert "| Error flag accuracy | 0.4000 |" in report.read_text()


@pytest.mark.medec
def test_shared_file_docs_keep_every_sentence(fake_nlp):
    if not SHARED_VAL.is_file():
        pytest.skip("../shared/medec is absent")
    records = read_medec(SHARED_VAL)
    for record in records:
        doc, boundaries = make_medec_doc(fake_nlp, record)
        assert len(list(doc.sents)) == len(boundaries), record.text_id
        assert len(boundaries) == len(record.sentences), record.text_id  # no sentence merged


@pytest.mark.slow
def test_real_pipeline_on_fixture():
    pytest.importorskip("medcorr.component")
    from medcorr.pipeline import build_pipeline

    records = read_medec(FIXTURES / "labeled.csv")
    stats = RunStats()
    lines = run_medec(build_pipeline(), records, stats=stats)
    assert [line.text_id for line in lines] == [r.text_id for r in records]
    for line, record in zip(lines, records):
        assert line.format()
        if line.error_flag:
            assert record.sentence_by_id(line.error_sentence_id) is not None
            assert line.corrected_sentence  # a proposal or the original sentence
        else:
            assert (line.error_sentence_id, line.corrected_sentence) == (-1, None)
    assert stats.notes == len(records)
