"""Building ready pipelines and reading results: the API the CLI, MEDEC runner and stream share."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Iterator

from medcorr.finding import Verdict

#: spaCy refuses texts over ``nlp.max_length`` (1,000,000 characters by default); medcorr windows long
#: notes itself and the CLI and stream have their own byte limits, so pipelines it builds accept up to this.
MAX_NOTE_CHARS = 10 * 1024 * 1024


def build_pipeline(config: str | Path | None = None, overrides: dict[str, Any] | None = None):
    """A spaCy ``Language`` with the medcorr component.

    ``config`` is a spaCy ``.cfg`` file (see ``pipelines/``) or a saved pipeline directory; when None, a
    blank English pipeline with the default medcorr component (shipped model, offline generator) is built.
    ``overrides`` are medcorr component settings (``{"threshold": 0.6}``) for the default pipeline, or
    dotted spaCy config overrides (``{"components.medcorr.threshold": 0.6}``) for a ``.cfg`` file.
    """
    import spacy

    import medcorr.component  # noqa: F401  (registers the factory even without the entry point)

    if config is None:
        nlp = spacy.blank("en")
        nlp.add_pipe("medcorr", config=dict(overrides or {}))
    elif Path(config).is_dir():
        nlp = spacy.load(Path(config), config=dict(overrides or {}))
    elif Path(config).is_file():
        from spacy.util import load_config, load_model_from_config

        cfg = load_config(Path(config), overrides=dict(overrides or {}), interpolate=False)
        if any(str(c.get("factory", "")).startswith("medspacy_") for c in cfg.get("components", {}).values()):
            import medspacy  # noqa: F401  (registers the medspacy_* factories)
        nlp = load_model_from_config(cfg, auto_fill=True)
        nlp.initialize()
    else:
        raise FileNotFoundError(f"pipeline config not found: {config}")
    nlp.max_length = max(nlp.max_length, MAX_NOTE_CHARS)
    return nlp


def medcorr_component(nlp) -> Any | None:
    """The pipeline's medcorr component: the pipe named ``medcorr``, else the first pipe made by the
    ``medcorr`` factory; None when there is neither."""
    names = list(getattr(nlp, "pipe_names", ()))
    if "medcorr" in names:
        return nlp.get_pipe("medcorr")
    for name in names:
        try:
            factory = nlp.get_pipe_meta(name).factory
        except (KeyError, ValueError):
            continue
        if factory == "medcorr":
            return nlp.get_pipe(name)
    return None


def verifier_of(nlp) -> Any | None:
    """The verifier of the pipeline's medcorr component, or None (no component, or no verifier)."""
    try:
        return getattr(medcorr_component(nlp), "verifier", None)
    except Exception:  # noqa: BLE001 (an unusual pipeline object: no verifier known)
        return None


#: Notes per ``nlp.pipe`` batch of the MEDEC runner, Spark and :func:`check_texts` when none is given
#: (raised for a verifier by :func:`verifier_batch`).
DEFAULT_PIPE_BATCH = 16


def verifier_batch(nlp, batch_size: int = DEFAULT_PIPE_BATCH) -> int:
    """``batch_size`` raised to the notes the pipeline's verifier can have in flight at once, so that one
    ``nlp.pipe`` batch keeps all the requests it may send going; ``batch_size`` without a verifier."""
    verifier = verifier_of(nlp)
    if verifier is None:
        return batch_size
    from medcorr.verifiers.base import notes_in_flight

    return max(batch_size, notes_in_flight(verifier))


def verdict_of(doc) -> Verdict:
    """The medcorr verdict the component stored on a processed ``Doc``."""
    verdict = doc._.medcorr
    if verdict is None:
        raise ValueError("this Doc was not processed by a medcorr component")
    return verdict


def check_texts(nlp, texts: Iterable[str], batch_size: int | None = None) -> Iterator[Verdict]:
    """Run ``nlp`` over ``texts`` and yield one verdict per text, in order (``batch_size`` notes per
    ``nlp.pipe`` batch; None: :data:`DEFAULT_PIPE_BATCH`, or the notes the verifier can have in flight when
    that is more)."""
    for doc in nlp.pipe(texts, batch_size=verifier_batch(nlp) if batch_size is None else batch_size):
        yield verdict_of(doc)
