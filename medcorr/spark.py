"""medcorr on Apache Spark: check a table of notes and get the results back as typed columns.

::

    from medcorr.spark import check_notes

    results = check_notes(notes_df, id_col="note_id", text_col="text")
    results.write.mode("overwrite").parquet("medcorr_results")

Each executor's Python worker builds the pipeline once (the first time a task with that configuration
runs there; Spark reuses its Python workers by default, ``spark.python.worker.reuse``) and runs
``nlp.pipe`` over the Arrow batches of its partitions (``DataFrame.mapInArrow``). The result has the note
id, the fields of :meth:`medcorr.finding.Verdict.to_dict` as typed columns (``claims`` and ``findings``
are arrays of structs with the fields of :meth:`~medcorr.finding.Finding.to_dict`, ``source`` and each
``evidence`` a struct with those of :meth:`~medcorr.finding.Evidence.to_dict`), and ``medcorr_version``
and ``model_version``. :func:`result_schema` is that schema; it is the only place that maps the data model
to Spark types.

A bad note never fails a task: a null text gets status ``empty``, a value that is not text (or bytes that
are not UTF-8) status ``invalid``, a note longer than the component's ``max_note_chars`` status
``too_long`` (it is not even tokenized), and a note on which the pipeline raises gets status ``error``
with the exception's class name in ``status_reason`` (never the note text); the other notes of its batch
are then checked one by one and keep their results. With the detector's CPU default (one encoder window
per ONNX call) a note's result does not depend on the notes it is batched with, so a task that Spark
retries, or a table partitioned differently, gives identical rows.

pyspark is imported only by the functions that need it (``pip install "medcorr[spark]"``). The
executors need medcorr installed (the same version as the driver) in the Python their workers run
(``PYSPARK_PYTHON``, e.g. the virtual environment's ``python``; set it before the session starts). Each
Python worker holds its own pipeline (0.61 GiB peak resident over the 574 MEDEC notes, plus its Arrow
batches): give the executors that much Python memory per core (``spark.executor.memoryOverhead`` /
``spark.executor.pyspark.memory``). Keep
``spark.python.worker.reuse`` on (Spark's default): without it every task starts a worker and builds the
pipeline again.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from medcorr import __version__
from medcorr.finding import Status, Verdict
from medcorr.pipeline import build_pipeline, medcorr_component, verdict_of, verifier_batch
from medcorr.screening import screen

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow
    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructField, StructType

logger = logging.getLogger("medcorr.spark")

#: Status of a note on which the pipeline raised (the reason names the exception class).
STATUS_ERROR = "error"
#: Status of a value that is not a note text (not a string, or bytes that are not UTF-8).
STATUS_INVALID = "invalid"
#: Pipelines kept per Python worker (keyed by configuration); the oldest is dropped beyond this.
MAX_CACHED_PIPELINES = 2
#: Columns added after the verdict's fields.
VERSION_COLUMNS = ("medcorr_version", "model_version")

_PIPELINES: dict[str, tuple[Any, Any]] = {}
_PIPELINES_LOCK = threading.Lock()


# --------------------------------------------------------------------------------------------- schema
def evidence_type() -> "StructType":
    """Spark type of :meth:`medcorr.finding.Evidence.to_dict`."""
    from pyspark.sql.types import ArrayType, DoubleType, IntegerType, StringType, StructField, StructType

    return StructType([
        StructField("kind", StringType(), False),
        StructField("name", StringType(), False),
        StructField("reason", StringType(), False),
        StructField("confidence", DoubleType(), True),
        StructField("measured", StringType(), False),
        StructField("spans", ArrayType(ArrayType(IntegerType(), False), False), False),
    ])


def finding_type() -> "StructType":
    """Spark type of :meth:`medcorr.finding.Finding.to_dict` (a claim or an asserted error)."""
    from pyspark.sql.types import ArrayType, DoubleType, IntegerType, StringType, StructField, StructType

    return StructType([
        StructField("role", StringType(), False),
        StructField("rank", IntegerType(), False),
        StructField("start", IntegerType(), False),
        StructField("end", IntegerType(), False),
        StructField("text", StringType(), False),
        StructField("type", StringType(), False),
        StructField("score", DoubleType(), False),
        StructField("sentence", IntegerType(), False),
        StructField("basis", StringType(), True),
        StructField("correction", StringType(), True),
        StructField("corrected_sentence", StringType(), True),
        StructField("correction_source", StringType(), True),
        StructField("alternatives", ArrayType(StringType(), False), False),
        StructField("evidence", ArrayType(evidence_type(), False), False),
    ])


def result_schema() -> "StructType":
    """The result columns (without the id and text columns): the keys of
    :meth:`medcorr.finding.Verdict.to_dict`, then ``medcorr_version`` and ``model_version``.

    ``status`` is a :class:`~medcorr.finding.Status` value, or :data:`STATUS_ERROR` / :data:`STATUS_INVALID`;
    ``flag`` and ``score`` are null when nothing judged the note; ``source`` is null when nothing decided
    ``flag``.
    """
    from pyspark.sql.types import ArrayType, BooleanType, DoubleType, IntegerType, StringType, StructField, StructType

    return StructType([
        StructField("status", StringType(), False),
        StructField("status_reason", StringType(), False),
        StructField("flag", BooleanType(), True),
        StructField("score", DoubleType(), True),
        StructField("error_sentence", IntegerType(), False),
        StructField("source", evidence_type(), True),
        StructField("claims", ArrayType(finding_type(), False), False),
        StructField("findings", ArrayType(finding_type(), False), False),
        StructField("medcorr_version", StringType(), False),
        StructField("model_version", StringType(), False),
    ])


def output_schema(id_field: "StructField", text_field: "StructField | None" = None) -> "StructType":
    """The schema :func:`check_notes` returns: the id column, the text column when kept, the results."""
    from pyspark.sql.types import StructType

    return StructType([id_field, *([text_field] if text_field is not None else []), *result_schema().fields])


# --------------------------------------------------------------------------------------------- rows
def _qualified_name(error: BaseException) -> str:
    cls = type(error)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def _status_row(status: str, reason: str) -> dict[str, Any]:
    """A result row for a note that was not analysed (the verdict fields of an unanalysed note)."""
    row = Verdict.not_analysed(Status.EMPTY, reason).to_dict()
    row["status"] = status
    return row


def _medcorr_component(nlp: Any) -> Any:
    """The pipeline's medcorr component (:func:`medcorr.pipeline.medcorr_component`), or a ValueError."""
    component = medcorr_component(nlp)
    if component is None:
        raise ValueError(f"the pipeline has no medcorr component (pipes: {', '.join(nlp.pipe_names) or 'none'})")
    return component


def _prescreen(value: Any, max_note_chars: int, max_length: int) -> tuple[str | None, dict[str, Any] | None]:
    """The note text to run, or the row of a value that is not run (null, not text, too long)."""
    if value is None:
        return None, _status_row(Status.EMPTY.value, "the note text is null")
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return None, _status_row(STATUS_INVALID, "the note bytes are not valid UTF-8")
    if not isinstance(value, str):
        return None, _status_row(STATUS_INVALID, f"the note value is a {type(value).__name__}, not text")
    if max_note_chars and len(value) > max_note_chars:
        screened = screen(value, max_note_chars, check_language=False)  # the component's own status and reason
        if screened is not None:
            return None, _status_row(screened.status.value, screened.reason)
    if len(value) > max_length:
        return None, _status_row(Status.TOO_LONG.value, f"the note has {len(value):,} characters, more than the "
                                                        f"pipeline accepts ({max_length:,}, nlp.max_length)")
    return value, None


def result_rows(nlp: Any, values: Sequence[Any], batch_size: int | None = None) -> list[dict[str, Any]]:
    """The result row of each value, in order, as the executors compute them for one Arrow batch.

    ``nlp`` is a pipeline with the medcorr component; ``values`` are note texts (``str``, UTF-8 ``bytes``,
    or anything else, which gets a status row). Each row has the keys of :func:`result_schema`. Notes go
    through ``nlp.pipe(..., batch_size=batch_size)`` (None: :data:`medcorr.pipeline.DEFAULT_PIPE_BATCH`, or
    the notes the verifier can have in flight when that is more); if the pipeline raises, the notes it had
    not returned are checked one at a time, and a note that raises alone gets status :data:`STATUS_ERROR`.
    """
    if batch_size is None:
        batch_size = verifier_batch(nlp)
    component = _medcorr_component(nlp)
    versions = {"medcorr_version": __version__, "model_version": str(component.model_version or "unknown")}
    max_note_chars = int(component.cfg.get("max_note_chars") or 0)
    rows: list[dict[str, Any] | None] = [None] * len(values)
    todo: list[tuple[int, str]] = []
    for index, value in enumerate(values):
        text, row = _prescreen(value, max_note_chars, int(nlp.max_length))
        if text is None:
            rows[index] = row
        else:
            todo.append((index, text))
    done = 0
    try:
        for doc in nlp.pipe((text for _, text in todo), batch_size=max(1, int(batch_size))):
            rows[todo[done][0]] = verdict_of(doc).to_dict()
            done += 1
    except Exception as error:  # noqa: BLE001 (one bad note must not fail the task: find it)
        logger.warning("the medcorr pipeline raised %s in a batch; checking its %d remaining notes one by one",
                       _qualified_name(error), len(todo) - done)
        for index, text in todo[done:]:
            rows[index] = _check_alone(nlp, text)
    return [{**row, **versions} for row in rows if row is not None]


def _check_alone(nlp: Any, text: str) -> dict[str, Any]:
    try:
        return verdict_of(nlp(text)).to_dict()
    except Exception as error:  # noqa: BLE001
        name = _qualified_name(error)
        logger.warning("the medcorr pipeline raised %s on a note; its row has status %r", name, STATUS_ERROR)
        return _status_row(STATUS_ERROR, f"the medcorr pipeline raised {name} on this note")


# --------------------------------------------------------------------------------------------- executors
def cached_pipeline(key: str, build: Callable[[], Any]) -> Any:
    """The pipeline of this Python process for ``key``, built by ``build()`` the first time it is asked for.

    At most :data:`MAX_CACHED_PIPELINES` are kept (the oldest is dropped). Each build is logged (INFO,
    logger ``medcorr.spark``) with the process id and its duration.
    """
    with _PIPELINES_LOCK:
        cached = _PIPELINES.get(key)
        if cached is not None:
            return cached[0]
        started = time.perf_counter()
        nlp = build()
        _medcorr_component(nlp)  # fail the task now if the pipeline has no medcorr component
        logger.info("built the medcorr pipeline in %.1f s (pid %d, %d cached)", time.perf_counter() - started,
                    os.getpid(), len(_PIPELINES) + 1)
        while len(_PIPELINES) >= MAX_CACHED_PIPELINES:
            _PIPELINES.pop(next(iter(_PIPELINES)))
        _PIPELINES[key] = (nlp, build)
        return nlp


class _NoteChecker:
    """The function each task runs over its Arrow batches (pickled by reference to this module)."""

    def __init__(self, key: str, config: str | None, overrides: dict[str, Any], builder: Callable[[], Any] | None,
                 batch_size: int | None, id_col: str, text_col: str, keep_text: bool, arrow_schema: "pyarrow.Schema"):
        self.key, self.config, self.overrides, self.builder = key, config, overrides, builder
        self.batch_size, self.id_col, self.text_col, self.keep_text = batch_size, id_col, text_col, keep_text
        self.arrow_schema = arrow_schema

    def _build(self) -> Any:
        if self.builder is not None:
            return self.builder()
        return build_pipeline(self.config, self.overrides)

    def __call__(self, batches: Iterator["pyarrow.RecordBatch"]) -> Iterator["pyarrow.RecordBatch"]:
        import pyarrow as pa

        schema = self.arrow_schema
        leading = 2 if self.keep_text else 1
        results_schema = pa.schema(list(schema)[leading:])
        nlp = None
        for batch in batches:
            if nlp is None:
                nlp = cached_pipeline(self.key, self._build)
            texts = batch.column(self.text_col)
            rows = result_rows(nlp, texts.to_pylist(), self.batch_size)
            results = pa.RecordBatch.from_pylist(rows, schema=results_schema)
            kept = [batch.column(self.id_col), *([texts] if self.keep_text else [])]
            kept = [array if array.type == field.type else array.cast(field.type)
                    for array, field in zip(kept, schema)]
            yield pa.RecordBatch.from_arrays([*kept, *results.columns], schema=schema)


def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _with_threads(config: str | None, overrides: dict[str, Any], num_threads: int) -> dict[str, Any]:
    """``overrides`` with the detector's thread count, unless they set it already."""
    key = "num_threads" if config is None else "components.medcorr.num_threads"
    return overrides if key in overrides else {**overrides, key: int(num_threads)}


def _task_cpus(spark: Any) -> int:
    try:
        return max(1, int(spark.conf.get("spark.task.cpus", "1")))
    except Exception:  # noqa: BLE001 (a setting Spark does not expose: one core per task, Spark's default)
        return 1


def check_notes(
    df: "DataFrame",
    id_col: str = "note_id",
    text_col: str = "text",
    config: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    batch_size: int | None = None,
    keep_text: bool = False,
    num_threads: int | None = None,
    builder: Callable[[], Any] | None = None,
) -> "DataFrame":
    """Check every note of ``df`` with medcorr; one result row per input row (lazy, like any transformation).

    ``df`` has a note id column ``id_col`` (any type, passed through) and a text column ``text_col``
    (string, or binary holding UTF-8). The result has ``id_col``, ``text_col`` when ``keep_text``, and the
    columns of :func:`result_schema`; rows keep the input's partitioning.

    The pipeline is the one :func:`medcorr.pipeline.build_pipeline` builds from ``config`` (a spaCy
    ``.cfg`` file or a ``nlp.to_disk`` directory; None = the shipped default) and ``overrides`` (component
    settings for the default pipeline, dotted spaCy overrides for a config; a verifier endpoint is set
    there like any other setting). ``config`` must be readable at the same path on the driver and on every
    executor. ``builder``, a picklable zero-argument function returning a pipeline with the medcorr
    component, replaces ``config`` and ``overrides`` (for pipelines assembled in code).

    A saved directory keeps the medcorr settings saved with it: the component restores them over
    load-time overrides, ``num_threads`` included, so save it with the settings the executors should use.
    With a verifier, the executors share only its endpoint; rows are as deterministic as its answers
    (``temperature`` 0 and a ``seed``, or its reply cache), and a note the verifier could not answer has
    status ``unverified``.

    ``num_threads``: ONNX threads per Python worker; None = ``spark.task.cpus`` (1 by default), so that
    the N concurrent tasks of an N-core executor use N cores and not N x N threads. It is added to
    ``overrides`` unless they set ``num_threads`` themselves; it is not applied to a ``builder``.
    ``batch_size``: notes per ``nlp.pipe`` batch within an Arrow batch
    (``spark.sql.execution.arrow.maxRecordsPerBatch`` rows); None = :data:`medcorr.pipeline.DEFAULT_PIPE_BATCH`,
    or as many notes as the verifier can have in flight when that is more.
    """
    from pyspark.sql.functions import col
    from pyspark.sql.pandas.types import to_arrow_schema
    from pyspark.sql.types import BinaryType, StringType

    if id_col == text_col:
        raise ValueError("id_col and text_col must be different columns")
    fields = {field.name: field for field in df.schema.fields}
    for name in (id_col, text_col):
        if name not in fields:
            raise ValueError(f"column {name!r} not found (columns: {', '.join(fields)})")
    if not isinstance(fields[text_col].dataType, (StringType, BinaryType)):
        raise TypeError(f"column {text_col!r} must be string or binary (UTF-8), not {fields[text_col].dataType.simpleString()}")
    taken = set(result_schema().fieldNames())
    for name in (id_col, *([text_col] if keep_text else [])):
        if name in taken:
            raise ValueError(f"column {name!r} would clash with a result column; rename it first")
    if builder is not None and (config is not None or overrides):
        raise ValueError("pass either builder, or config / overrides")

    config_str = None if config is None else str(config)
    if config_str is not None and not Path(config_str).exists():
        raise FileNotFoundError(f"pipeline config not found: {config_str}")
    settings = dict(overrides or {})
    if builder is None:
        threads = num_threads if num_threads is not None else _task_cpus(df.sparkSession)
        settings = _with_threads(config_str, settings, threads)
        identity = json.dumps({"config": config_str, "overrides": settings}, sort_keys=True, default=str)
    else:
        from pyspark import cloudpickle

        identity = "builder:" + hashlib.sha256(cloudpickle.dumps(builder)).hexdigest()
    key = hashlib.sha256(identity.encode("utf-8")).hexdigest()

    schema = output_schema(fields[id_col], fields[text_col] if keep_text else None)
    checker = _NoteChecker(key, config_str, settings, builder, batch_size, id_col, text_col, keep_text,
                           to_arrow_schema(schema))
    selected = df.select(col(_quoted(id_col)), col(_quoted(text_col)))
    with warnings.catch_warnings():
        # pyspark checks the pandas version for every Arrow UDF; mapInArrow does not use pandas
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
        return selected.mapInArrow(checker, schema)
