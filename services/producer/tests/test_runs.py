"""Which run a producer delivers into, and what a pair written again is: pure decisions."""

from __future__ import annotations

import pytest

from quax_producer.runs import RunLedger, RunRefusedError, check_shards, choose_run, new_run_id
from quaxspec.progress import FileMark, RunConfig, RunProgress, Shard

CONFIG = RunConfig(n_fft=3072, fs=2e6, f_lo=0.0, slices_per_chunk=32)
SOURCE = "watch:/daq/out"
T0 = 1_796_000_000.0  # 2026-11-30T00:53:20Z


def _mark(number: int, fingerprint: str | None = None) -> FileMark:
    return FileMark(
        number=number,
        fingerprint=fingerprint or f"{number:032x}",
        daq_time=T0 + number,
        samples=2**23,
    )


def _run(run_id: str, *numbers: int, source: str = SOURCE, started: float = T0) -> RunProgress:
    progress = RunProgress(
        run_id=run_id, source=source, config=CONFIG, started_time=started, updated_time=started
    )
    for number in numbers:
        progress = progress.delivered(_mark(number), now=started + number)
    return progress


def _choose(known: list[RunProgress], *, run_id: str | None = None, config=CONFIG, files=None):
    on_disk = files if files is not None else {n: f"{n:032x}" for n in range(100)}
    return choose_run(
        run_id=run_id,
        source=SOURCE,
        base="out",
        config=config,
        known={p.run_id: p for p in known},
        fingerprint_of=on_disk.get,
        first_time=lambda: T0 + 3600,
        now=T0 + 7200,
    )


def test_a_new_run_is_named_after_the_source_and_its_first_files_time():
    assert new_run_id("out", T0, {}) == "out-20261130T005320Z"
    assert new_run_id("out", T0, {"out-20261130T005320Z": 1}) == "out-20261130T005320Z-2"


def test_without_a_run_id_the_newest_run_of_the_source_is_resumed():
    older, newest = _run("out-a", 0, 1, started=T0), _run("out-b", 0, 1, 2, started=T0 + 10)
    other = _run("elsewhere", 0, source="watch:/other", started=T0 + 20)

    progress, why = _choose([older, newest, other])

    assert progress is newest
    assert "resuming run out-b" in why


def test_without_a_run_id_another_acquisition_or_configuration_gets_a_new_run():
    delivered = _run("out-a", 0, 1, 2)
    overwritten = {0: "f" * 32, 1: "1" * 32, 2: "2" * 32}  # file 0 has other content now

    progress, why = _choose([delivered], files=overwritten)
    assert progress.run_id == "out-20261130T015320Z"
    assert (len(progress.files), progress.config) == (0, CONFIG)
    assert "holds file 0 with other content" in why

    other_n_fft = RunConfig(n_fft=4096, fs=2e6, f_lo=0.0, slices_per_chunk=32)
    progress, why = _choose([delivered], config=other_n_fft)
    assert progress.run_id != "out-a"
    assert "n_fft 4096 ≠ 3072" in why


def test_files_no_longer_there_do_not_count_against_a_run():
    progress, _ = _choose([_run("out-a", 0, 1, 2)], files={})
    assert progress.run_id == "out-a"


def test_a_named_run_is_created_or_resumed():
    assert _choose([], run_id="run42")[0].run_id == "run42"
    existing = _run("run42", 0, 1)
    assert _choose([existing], run_id="run42")[0] is existing


def test_a_named_run_of_another_configuration_is_refused_naming_both():
    existing = _run("run42", 0, 1)
    other = RunConfig(n_fft=4096, fs=2e6, f_lo=0.0, slices_per_chunk=32)

    with pytest.raises(RunRefusedError) as refused:
        _choose([existing], run_id="run42", config=other)

    message = str(refused.value)
    assert "run run42 was started with n_fft 3072" in message
    assert "this producer has n_fft 4096" in message


def test_a_named_run_whose_files_changed_is_refused():
    with pytest.raises(RunRefusedError, match="holds file 1 with other content"):
        _choose([_run("run42", 0, 1)], run_id="run42", files={0: f"{0:032x}", 1: "e" * 32})


def test_a_watched_pair_is_sent_repeated_or_a_new_acquisition():
    ledger = RunLedger(_run("out-a", 5, 6, 7), live=True)  # file n written at T0 + n

    assert ledger.decide(8, T0 + 8, None).verdict == "send"
    assert ledger.decide(7, T0 + 9, f"{7:032x}").verdict == "repeat"  # same content again
    assert ledger.decide(7, T0 + 9, "d" * 32).verdict == "new_acquisition"
    assert ledger.decide(6, T0 + 9, f"{6:032x}").verdict == "new_acquisition"  # not compared
    assert ledger.decide(2, T0 + 9, None).verdict == "new_acquisition"  # numbered from 0 again
    assert ledger.decide(2, T0 + 2, None).verdict == "send"  # an earlier file, found late
    decision = ledger.decide(9, T0 + 1, None)  # numbered above the first, written before it
    assert decision.verdict == "predates"
    assert "before the run's first file 5" in decision.reason


def test_delivered_files_are_remembered_for_repeats():
    ledger = RunLedger(_run("out-a", 0), live=True)
    ledger.delivered(_mark(1, "a" * 32), now=T0)
    ledger.delivered(_mark(2, "b" * 32), now=T0)

    assert ledger.decide(1, T0 + 5, "a" * 32).verdict == "repeat"
    assert ledger.progress.files.ranges == [(0, 3)]
    assert ledger.ended(now=T0 + 6).finished


def test_a_replay_only_skips_what_it_delivered():
    ledger = RunLedger(_run("out-a", 5, 6), live=False)

    assert ledger.decide(6, T0, "0" * 32).verdict == "repeat"
    assert ledger.decide(2, T0 - 100, None).verdict == "send"  # order and times mean nothing


def _shard_record(shard: Shard | None, config: RunConfig = CONFIG) -> RunProgress:
    return RunProgress(
        run_id="r", source=SOURCE, config=config, started_time=T0, updated_time=T0, shard=shard
    )


def test_the_shards_of_a_run_go_together_and_nothing_else_joins_them() -> None:
    others = [_shard_record(Shard(1, 2)), _shard_record(Shard(2, 2))]
    check_shards(Shard(2, 2), CONFIG, others)  # its own record and its sibling's: fine
    check_shards(None, CONFIG, [_shard_record(None)])  # a whole run resumed whole: fine
    refusals = [
        (None, CONFIG, "is fed as shard 1/2; this producer would feed the whole run"),
        (Shard(1, 3), CONFIG, "the same number of shards"),
        (Shard(2, 2), RunConfig(n_fft=2048, fs=2e6, f_lo=0.0, slices_per_chunk=32),
         "n_fft 2048 ≠ 3072"),
    ]  # fmt: skip
    for shard, config, words in refusals:
        with pytest.raises(RunRefusedError, match=words):
            check_shards(shard, config, others)
    with pytest.raises(RunRefusedError, match="is fed as the whole run; this producer would"):
        check_shards(Shard(1, 2), CONFIG, [_shard_record(None)])
