"""Scenario 6 (served): hostile result files land in ``errors`` with their raw bytes kept;
every good job of the batch lands as usual."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

from reliability_helpers import do_pull

from playment_datasets.emulator import Emulator, GroundTruth, generate_batch
from playment_datasets.registry.registry import Registry

RECT = b'{"_id":"a","label":"car","coordinates":[]},'
HOSTILE: dict[str, bytes] = {
    "malformed": b'{"data": {"annotations": {"rectangles": [{"_id": "r1", "label": ',
    # 20 MB of rectangles that never closes: too big to matter, still not JSON.
    "huge": b'{"data": {"annotations": {"rectangles": [' + RECT * (20_000_000 // len(RECT)),
    "deeply_nested": b'{"data": ' + b"[" * 200_000 + b"]" * 200_000 + b"}",
    "wrong_typed": b'{"data": {"annotations": {"rectangles": "0.1,0.2,0.3,0.4"}}}',
    "non_utf8": b'{"data": {"annotations": {"rectangles": []}, "image_url": "\xff\xfe\xfa"}}',
    "html": b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
    "not_an_object": b"[1, 2, 3]",
    "nan": b'{"data": {"annotations": {"rectangles": [{"_id": "n", "label": "car", '
           b'"coordinates": [{"x": NaN, "y": 0.1}]}]}}}',
    "empty": b"",
}


def test_hostile_results_are_quarantined_with_their_bytes(tmp_path: Path) -> None:
    batch = generate_batch(40, seed=17, kinds=["image"], completed_fraction=1.0)
    jobs = batch.jobs
    bad = {jobs[i].job_id: body for i, body in enumerate(HOSTILE.values())}
    with Emulator(batch, page_size=10) as emu:
        for job_id, body in bad.items():
            emu.set_result(job_id, body)
        ds = do_pull(emu, tmp_path, workers=8)

    registry = Registry(tmp_path)
    errors = ds.errors.set_index("job_id")
    assert sorted(errors.index) == sorted(bad)
    assert set(errors["stage"]) == {"normalize"}
    for job_id, body in bad.items():
        sha = hashlib.sha256(body).hexdigest()
        assert errors.loc[job_id, "raw_sha256"] == sha, job_id
        assert ds.manifest["jobs"][job_id]["result_sha256"] == sha
        assert registry.get_object(sha) == body  # the raw bytes are kept as they came
        assert isinstance(errors.loc[job_id, "message"], str) and errors.loc[job_id, "message"]
    assert errors.loc[jobs[0].job_id, "error_type"] == "invalid_json"
    assert errors.loc[jobs[2].job_id, "error_type"] == "too_deep"
    assert errors.loc[jobs[4].job_id, "error_type"] == "invalid_encoding"

    # Every job has its jobs row; the good ones have exactly their annotations.
    assert sorted(ds.jobs["job_id"]) == sorted(job.job_id for job in jobs)
    good = [job for job in jobs if job.job_id not in bad]
    truth = GroundTruth()
    for job in good:
        truth.add(job.truth)
    assert Counter(ds.annotations["type"]) == truth.annotations_by_type
    assert not set(ds.annotations["job_id"]) & set(bad)
    assert len(ds.points) == truth.points
    assert ds.manifest["counts"]["errors"] == len(bad)
    assert registry.verify().ok
