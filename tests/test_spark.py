"""medcorr.spark on a local Spark (``local[2]``): typed columns, equality with ``nlp.pipe``, one pipeline
build per executor Python worker, bad notes as status rows, determinism, a Parquet round trip.

The SparkSession is started once for the module (JVM start-up dominates); the workers run this venv's
Python (``PYSPARK_PYTHON``). Tests that need it skip with a reason when pyspark or Java is missing; the
schema tests need pyspark only.
"""
from __future__ import annotations

import math
import os
import random
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

pyspark = pytest.importorskip("pyspark", reason="pyspark is not installed (pip install -e '.[spark]')")
pa = pytest.importorskip("pyarrow", reason="pyarrow is not installed (pip install -e '.[spark]')")

from pyspark import cloudpickle  # noqa: E402
from pyspark.sql.pandas.types import to_arrow_schema  # noqa: E402
from pyspark.sql.types import (  # noqa: E402
    ArrayType, BinaryType, BooleanType, DoubleType, IntegerType, LongType, StringType, StructField, StructType,
)

from medcorr import __version__  # noqa: E402
from medcorr.finding import ErrorType, Evidence, Finding, Role, SourceKind, SpanBasis, Status, Verdict  # noqa: E402
from medcorr.pipeline import build_pipeline, verdict_of  # noqa: E402
from medcorr.spark import (  # noqa: E402
    STATUS_ERROR, STATUS_INVALID, check_notes, evidence_type, finding_type, output_schema, result_rows,
    result_schema,
)

pytestmark = pytest.mark.spark

# the builders below are defined in this file, which the executors' Python workers cannot import: ship
# this module's functions by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])

ROOT = Path(__file__).resolve().parents[1]
NOTES_DIR = ROOT / "tests" / "fixtures" / "notes"
FIXTURE_MEDEC = ROOT / "tests" / "fixtures" / "medec" / "labeled.csv"
SHARED_MEDEC = ROOT.parent / "shared" / "medec" / "MEDEC-MS-ValidationSet-with-GroundTruth-and-ErrorType.csv"
RAISE_MARKER = "MEDCORR-TEST-RAISE"


# ------------------------------------------------------------------------------------------- fixtures
def _java() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


@pytest.fixture(scope="session")
def spark():
    """One local[2] SparkSession for the whole run (UI off, 2 shuffle partitions, this venv's Python)."""
    if _java() is None:
        pytest.skip("Java is not installed (Spark needs a JRE 17+: apt-get install default-jre-headless)")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]").appName("medcorr-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def nlp():
    """The reference: the default pipeline in this process (num_threads 0, as a user would build it)."""
    return build_pipeline()


def _fixture_notes() -> list[tuple[str, str]]:
    return [(path.stem, path.read_text(encoding="utf-8")) for path in sorted(NOTES_DIR.glob("*.txt"))]


def _generated_notes(count: int = 24, seed: int = 7) -> list[tuple[str, str]]:
    """Notes made of sentences of the fixture notes and fixture MEDEC texts, shuffled (seeded)."""
    from medcorr.medec.io import read_medec

    texts = [text for _, text in _fixture_notes()] + [r.text for r in read_medec(FIXTURE_MEDEC) if r.text]
    sentences = [s for text in texts for s in re.split(r"(?<=\.)\s+", text.strip()) if s]
    rng = random.Random(seed)
    return [(f"gen-{i}", " ".join(rng.sample(sentences, rng.randint(2, 9)))) for i in range(count)]


def _notes_df(spark, notes: list[tuple[str, Any]], text_type: str = "string"):
    return spark.createDataFrame(notes, f"note_id string, text {text_type}")


def _result_dict(row) -> dict[str, Any]:
    data = row.asDict(recursive=True)
    return {key: data[key] for key in result_schema().fieldNames()}


def _expected(nlp, texts: list[str]) -> list[dict[str, Any]]:
    version = nlp.get_pipe("medcorr").model_version
    return [{**verdict_of(doc).to_dict(), "medcorr_version": __version__, "model_version": version}
            for doc in nlp.pipe(texts, batch_size=16)]


def _by_id(df) -> dict[str, dict[str, Any]]:
    return {row.note_id: _result_dict(row) for row in df.collect()}


def _assert_same(rows: dict[str, dict[str, Any]], notes: list[tuple[str, Any]], expected: list[dict[str, Any]]) -> None:
    """Spark's row of every note equals the expected one; else name the notes and the keys that differ."""
    assert sorted(rows) == sorted(note_id for note_id, _ in notes)
    different = {note_id: sorted(key for key in want if rows[note_id].get(key) != want[key])
                 for (note_id, _), want in zip(notes, expected) if rows[note_id] != want}
    assert not different, f"{len(different)} of {len(notes)} notes differ; keys: {dict(list(different.items())[:5])}"


def _leaf_schema(data_type) -> Any:
    """A data type as nested names and simple types, without nullability (Parquet reads all as nullable)."""
    if isinstance(data_type, StructType):
        return [(field.name, _leaf_schema(field.dataType)) for field in data_type.fields]
    if isinstance(data_type, ArrayType):
        return ["array", _leaf_schema(data_type.elementType)]
    return data_type.simpleString()


# ------------------------------------------------------------------------------- schema (no JVM)
def _full_verdict() -> Verdict:
    """A verdict with every optional field set, so that every key of every to_dict is present."""
    evidence = Evidence(SourceKind.VERIFIER, "medcorr.ChatVerifier.v1 model@host", reason="contradicts the labs",
                        confidence=0.8, measured="cross-validated verdict AUC 0.81", spans=[(3, 9), (20, 31)])
    error = Finding(start=3, end=9, text="vancomycin", type=ErrorType.PHARMACOTHERAPY, score=0.8, sentence=2,
                    role=Role.ERROR, rank=0, correction="nitrofurantoin", corrected_sentence="She takes nitrofurantoin.",
                    correction_source="medcorr.ChatVerifier.v1", alternatives=["nitrofurantoin", "fosfomycin"],
                    evidence=[evidence], basis=SpanBasis.TERM)
    claim = Finding(start=3, end=9, text="vancomycin", type=ErrorType.PHARMACOTHERAPY, score=0.61, sentence=2,
                    rank=0, alternatives=["nitrofurantoin"], basis=SpanBasis.TERM)
    return Verdict(status=Status.CHECKED, flag=True, score=0.8, error_sentence=2, source=evidence,
                   status_reason="the verifier found an error", claims=[claim], findings=[error])


def _assert_keys_match(value: Any, data_type, where: str) -> None:
    """Every key of the to_dict value has a field of that name in the Spark type, and the other way round."""
    if isinstance(data_type, StructType):
        assert isinstance(value, dict), where
        assert list(value) == data_type.fieldNames(), f"{where}: to_dict keys {list(value)} != columns {data_type.fieldNames()}"
        for field in data_type.fields:
            if value[field.name] is not None:
                _assert_keys_match(value[field.name], field.dataType, f"{where}.{field.name}")
            else:
                assert field.nullable, f"{where}.{field.name} is None but the column is not nullable"
    elif isinstance(data_type, ArrayType):
        assert isinstance(value, list), where
        for item in value:
            _assert_keys_match(item, data_type.elementType, f"{where}[]")


def test_schema_has_a_column_for_every_key_of_the_data_model():
    verdict = _full_verdict()
    verdict_type = StructType(result_schema().fields[: -2])
    _assert_keys_match(verdict.to_dict(), verdict_type, "Verdict")
    _assert_keys_match(verdict.findings[0].to_dict(), finding_type(), "Finding")
    _assert_keys_match(verdict.source.to_dict(), evidence_type(), "Evidence")
    assert verdict.findings[0].evidence and verdict.findings[0].alternatives  # the sample fills every list
    assert result_schema().fieldNames()[-2:] == ["medcorr_version", "model_version"]


def test_schema_types_hold_the_data_model_exactly():
    """A full verdict goes through an Arrow batch of the result schema and comes back unchanged."""
    row = {**_full_verdict().to_dict(), "medcorr_version": __version__, "model_version": "m"}
    unanalysed = {**Verdict.empty().to_dict(), "medcorr_version": __version__, "model_version": "m"}
    batch = pa.RecordBatch.from_pylist([row, unanalysed], schema=to_arrow_schema(result_schema()))
    assert batch.to_pylist() == [row, unanalysed]
    fields = {field.name: field for field in result_schema().fields}
    assert isinstance(fields["flag"].dataType, BooleanType) and fields["flag"].nullable
    assert isinstance(fields["score"].dataType, DoubleType) and fields["score"].nullable
    assert isinstance(fields["error_sentence"].dataType, IntegerType)
    assert isinstance(fields["claims"].dataType, ArrayType)
    assert fields["findings"].dataType.elementType == finding_type()
    assert fields["source"].dataType == evidence_type()


def test_import_medcorr_spark_loads_no_pyspark():
    """pyspark is imported by the functions that need it, never by ``import medcorr`` or ``medcorr.spark``."""
    import subprocess

    code = ("import sys, medcorr, medcorr.pipeline, medcorr.spark; "
            "loaded = [m for m in sys.modules if m == 'pyspark' or m.startswith('pyspark.')]; "
            "assert not loaded, loaded")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# ------------------------------------------------------------------------ result_rows (no JVM)
def test_result_rows_gives_bad_values_a_status_row(nlp):
    good = _fixture_notes()[0][1]
    values = [None, "", "   \n", b"\xff\xfe not utf-8", 42, "word " * 60_000, good, good.encode("utf-8")]
    rows = result_rows(nlp, values)
    assert [(r["status"], r["status_reason"]) for r in rows[:4]] == [
        ("empty", "the note text is null"),
        ("empty", "the note is empty or whitespace only"),
        ("empty", "the note is empty or whitespace only"),
        (STATUS_INVALID, "the note bytes are not valid UTF-8"),
    ]
    assert rows[4]["status"] == STATUS_INVALID and "int" in rows[4]["status_reason"]
    assert rows[5]["status"] == Status.TOO_LONG.value and "300,000 characters" in rows[5]["status_reason"]
    expected = _expected(nlp, [good])[0]
    assert rows[6] == expected and rows[7] == expected  # bytes are decoded as UTF-8
    # the same statuses and reasons the component itself gives
    assert rows[1] == _expected(nlp, [""])[0]
    assert rows[5] == _expected(nlp, ["word " * 60_000])[0]


def _raise_on_marker(doc):
    if RAISE_MARKER in doc.text:
        raise ValueError("a note with the marker")
    return doc


def _with_raiser(nlp):
    from spacy.language import Language

    if not Language.has_factory("medcorr_test_raiser"):
        Language.component("medcorr_test_raiser", func=_raise_on_marker)
    if "medcorr_test_raiser" not in nlp.pipe_names:
        nlp.add_pipe("medcorr_test_raiser", first=True)
    return nlp


def test_result_rows_isolates_a_note_on_which_the_pipeline_raises(nlp):
    notes = [text for _, text in _fixture_notes()]
    bad = f"{RAISE_MARKER} secret patient text."
    raiser = _with_raiser(build_pipeline(overrides={"num_threads": 1}))
    rows = result_rows(raiser, [notes[0], notes[1], bad, notes[2], notes[3]], batch_size=2)
    assert rows[2]["status"] == STATUS_ERROR
    assert rows[2]["status_reason"] == "the medcorr pipeline raised ValueError on this note"
    assert "secret" not in str(rows[2]) and rows[2]["claims"] == [] and rows[2]["flag"] is None
    assert [rows[i] for i in (0, 1, 3, 4)] == _expected(nlp, notes[:4])


# ----------------------------------------------------------------------------------- on Spark
def test_typed_columns_and_schema(spark):
    df = spark.createDataFrame([(7, _fixture_notes()[0][1])], "id long, note string")
    result = check_notes(df, id_col="id", text_col="note", keep_text=True)
    expected = output_schema(StructField("id", LongType(), True), StructField("note", StringType(), True))
    assert result.schema == expected
    assert result.columns == ["id", "note", *result_schema().fieldNames()]
    types = dict(result.dtypes)
    assert types["flag"] == "boolean" and types["score"] == "double" and types["error_sentence"] == "int"
    assert types["source"].startswith("struct<kind:string,name:string")
    assert types["claims"].startswith("array<struct<role:string,rank:int,start:int,end:int,text:string")
    assert "evidence:array<struct<kind:string" in types["findings"]
    row = result.collect()[0]
    assert row.id == 7 and row.note == _fixture_notes()[0][1] and row.claims and row.claims[0].rank == 0
    with pytest.raises(TypeError, match="string or binary"):
        check_notes(df, id_col="note", text_col="id")
    with pytest.raises(ValueError, match="not found"):
        check_notes(df)
    with pytest.raises(ValueError, match="clash"):
        check_notes(df.withColumnRenamed("id", "status"), id_col="status", text_col="note")


def test_spark_rows_equal_nlp_pipe(spark, nlp):
    notes = _fixture_notes() + _generated_notes()
    result = _by_id(check_notes(_notes_df(spark, notes).repartition(3)))
    _assert_same(result, notes, _expected(nlp, [text for _, text in notes]))


def test_bad_notes_give_status_rows_not_failed_tasks(spark, nlp):
    good = _fixture_notes()[1][1]
    notes = [("null", None), ("empty", ""), ("blank", " \t\n "), ("huge", "pain " * 50_000),
             ("french", "Le patient présente une douleur thoracique depuis deux jours, sans fièvre ni toux, "
                        "et son traitement habituel comprend de l'aspirine."),
             ("good", good)]
    rows = _by_id(check_notes(_notes_df(spark, notes)))
    assert {k: rows[k]["status"] for k in rows} == {
        "null": "empty", "empty": "empty", "blank": "empty", "huge": "too_long", "french": "not_english",
        "good": "claims_only"}
    assert rows["good"] == _expected(nlp, [good])[0]
    binary = [("bad-utf8", bytearray(b"\xc3\x28 broken")), ("good", bytearray(good.encode("utf-8"))),
              ("null", None)]
    rows = _by_id(check_notes(_notes_df(spark, binary, "binary")))
    assert rows["bad-utf8"]["status"] == STATUS_INVALID
    assert rows["good"] == _expected(nlp, [good])[0] and rows["null"]["status"] == "empty"


def test_rerun_and_repartition_give_identical_rows(spark):
    """What a task retried by Spark must do: the same rows, also with other partitions and Arrow batches."""
    df = _notes_df(spark, _fixture_notes() + _generated_notes(12, seed=3))
    first = sorted(check_notes(df).collect())
    second = sorted(check_notes(df).collect())
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "3")
    try:
        third = sorted(check_notes(df.repartition(4), batch_size=2).collect())
    finally:
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")
    assert first == second == third and len(first) == 19


def test_parquet_round_trip(spark, tmp_path):
    df = _notes_df(spark, _fixture_notes()[:4] + [("null", None)])
    result = check_notes(df, keep_text=True)
    path = str(tmp_path / "results.parquet")
    result.write.mode("overwrite").parquet(path)
    back = spark.read.parquet(path)
    assert _leaf_schema(back.schema) == _leaf_schema(result.schema)
    assert sorted(back.collect()) == sorted(result.collect())
    assert back.filter("status = 'claims_only'").count() == 4


def test_saved_pipeline_directory_and_config_file_overrides_reach_the_executors(spark, tmp_path):
    notes = _fixture_notes()
    texts = [text for _, text in notes]
    saved = tmp_path / "pipeline"
    one_claim = build_pipeline(overrides={"max_claims": 1})
    one_claim.to_disk(saved)
    rows = _by_id(check_notes(_notes_df(spark, notes), config=saved))
    _assert_same(rows, notes, _expected(one_claim, texts))
    assert all(len(row["claims"]) == 1 for row in rows.values())

    config = ROOT / "pipelines" / "medcorr.cfg"
    overrides = {"components.medcorr.max_claims": 2}
    rows = _by_id(check_notes(_notes_df(spark, notes), config=config, overrides=overrides))
    reference = build_pipeline(config, overrides)
    _assert_same(rows, notes, _expected(reference, texts))
    assert max(len(row["claims"]) for row in rows.values()) == 2
    with pytest.raises(FileNotFoundError):
        check_notes(_notes_df(spark, notes), config=tmp_path / "missing.cfg")


def test_a_verifier_endpoint_is_shared_by_the_executors_one_request_per_note(spark, nlp):
    from chat_stub import StubServer, answer, checked_sentences, note_sentences

    def error_in_first_checked(body, index):
        sentences, checked = note_sentences(body), checked_sentences(body)
        return 200, answer(True, checked[0], sentences[checked[0]].rstrip(".") + " (corrected).")

    server = StubServer(error_in_first_checked)
    try:
        verifier = {"@medcorr_verifiers": "medcorr.ChatVerifier.v1", "base_url": server.base_url, "model": "stub",
                    "api_key_env": None, "examples": 0, "backoff": 0.01}
        notes = _fixture_notes() + [("empty", "")]
        rows = _by_id(check_notes(_notes_df(spark, notes).repartition(2), overrides={"verifier": verifier}))
        assert server.calls == len(notes) - 1  # one request per note with claims, none for the empty note
        reference = build_pipeline(overrides={"verifier": verifier})
        _assert_same(rows, notes, _expected(reference, [text for _, text in notes]))
    finally:
        server.close()
    checked = [row for row in rows.values() if row["status"] == "checked"]
    assert len(checked) == len(notes) - 1 and rows["empty"]["status"] == "empty"
    assert all(row["flag"] is True and row["source"]["kind"] == "verifier" and row["findings"] for row in checked)


@pytest.fixture(scope="module")
def counting_builder(tmp_path_factory):
    """A builder that records the pid of every build in a file and adds a pipe that raises on a marker."""
    log = tmp_path_factory.mktemp("builds") / "builds.txt"
    log.touch()

    def builder():
        with open(log, "a", encoding="utf-8") as out:
            out.write(f"{os.getpid()}\n")
        return _with_raiser(build_pipeline(overrides={"num_threads": 1}))

    return builder, log


def test_the_pipeline_is_built_once_per_worker_not_per_batch(spark, nlp, counting_builder):
    builder, log = counting_builder
    notes = _generated_notes(40, seed=11)
    df = _notes_df(spark, notes).repartition(4)
    from pyspark.sql.functions import spark_partition_id

    per_partition = [row["count"] for row in df.groupBy(spark_partition_id().alias("p")).count().collect()]
    records_per_batch = 2
    batches = sum(math.ceil(n / records_per_batch) for n in per_partition)
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(records_per_batch))
    try:
        rows = _by_id(check_notes(df, builder=builder))
    finally:
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")
    _assert_same(rows, notes, _expected(nlp, [text for _, text in notes]))
    pids = log.read_text(encoding="utf-8").split()
    workers = spark.sparkContext.defaultParallelism  # local[2]: at most 2 Python workers run at once
    assert batches >= 20 and len(per_partition) == 4
    assert 1 <= len(pids) <= workers < batches
    assert len(set(pids)) == len(pids)  # no worker built it twice


def test_a_note_on_which_the_pipeline_raises_gets_an_error_row(spark, nlp, counting_builder):
    builder, _ = counting_builder
    notes = _fixture_notes()
    bad = ("bad", f"{RAISE_MARKER} secret patient text.")
    mixed = notes[:3] + [bad] + notes[3:]
    rows = _by_id(check_notes(_notes_df(spark, mixed).coalesce(1), builder=builder, batch_size=4))
    assert rows["bad"]["status"] == STATUS_ERROR
    assert rows["bad"]["status_reason"] == "the medcorr pipeline raised ValueError on this note"
    assert "secret" not in str(rows["bad"]) and rows["bad"]["claims"] == []
    _assert_same({k: v for k, v in rows.items() if k != "bad"}, notes, _expected(nlp, [text for _, text in notes]))


@pytest.mark.medec
@pytest.mark.slow
def test_all_shared_medec_notes_equal_nlp_pipe(spark, nlp):
    if not SHARED_MEDEC.exists():
        pytest.skip(f"{SHARED_MEDEC} not found")
    from medcorr.medec.io import read_medec

    records = read_medec(SHARED_MEDEC)
    notes = [(record.text_id, record.text) for record in records]
    assert len(notes) == 574
    result = _by_id(check_notes(_notes_df(spark, notes)))
    _assert_same(result, notes, _expected(nlp, [text for _, text in notes]))
