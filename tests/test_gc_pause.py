"""``paused_gc``: the collector is off inside, and comes back as it was, also when pauses nest or overlap."""
import gc
import threading

import pytest

from medcorr.gc_pause import paused_gc


@pytest.fixture(autouse=True)
def collector_on():
    was = gc.isenabled()
    gc.enable()
    yield
    gc.enable() if was else gc.disable()


def test_collector_is_off_inside_and_back_on_after():
    with paused_gc():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_an_exception_still_restores_the_collector():
    with pytest.raises(ValueError):
        with paused_gc():
            raise ValueError("boom")
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off():
    gc.disable()
    with paused_gc():
        pass
    assert not gc.isenabled()


def test_overlapping_pauses_in_two_threads_turn_it_back_on_once_both_end():
    first_inside, second_inside, first_done = threading.Event(), threading.Event(), threading.Event()

    def first():
        with paused_gc():
            first_inside.set()
            second_inside.wait(5)
        first_done.set()

    thread = threading.Thread(target=first)
    thread.start()
    first_inside.wait(5)
    with paused_gc():  # begun while the collector was already paused by the other thread
        second_inside.set()
        first_done.wait(5)
        assert not gc.isenabled()  # the other pause ended, this one still holds
    thread.join(5)
    assert gc.isenabled()


def test_lexicon_load_leaves_the_collector_on(tmp_path):
    from medcorr.lexicon import Lexicon

    Lexicon.load()
    assert gc.isenabled()
    with pytest.raises(FileNotFoundError):
        Lexicon.load(tmp_path / "missing.jsonl.gz")
    assert gc.isenabled()
