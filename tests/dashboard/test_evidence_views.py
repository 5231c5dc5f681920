"""The evidence builders (dashboard/shared/evidence.py, forget/evidence_views.py, forget/canary_views.py)
and the Compare page's evidence table, on a report in the shape purge_engine.audit.report returns, its
numbers taken from a verified canary run (4 teachers, 2 students, 8 canaries, the canaries forgotten), cut
to two samples."""

import copy
import math

import pytest

from dashboard.compare import views as compare_views
from dashboard.forget import canary_views
from dashboard.forget import evidence_views as ev
from dashboard.shared import evidence


def target(sample_id, role, constituent, via, references, before, after, reference):
    return {"sample_id": sample_id, "role": role, "constituent": constituent, "via": via, "teacher_id": 0,
            "references": references, "reference_constituents": [], "p_before": before, "p_after": after,
            "p_reference": reference, "z_before": None, "z_after": None, "z_reference": None}


def point(round_, p, rates=None):
    return {"round": round_, "p": p, "z": [0.0] * len(p),
            "canary_rate": rates or {"teacher-0": 0.0, "purge-0": 0.0}}


REPORT = {
    "request_id": 1, "samples": [1, 61], "verified": True, "exact": True,
    "membership": [
        target(1, "teacher", 0, "data", 3, 9.0e-10, 0.77, 0.77),
        target(1, "purge", 0, "data+teacher", 1, 1.2e-3, 0.85, 0.85),
        target(1, "baseline", 0, "data+teacher", 0, None, None, None),
        target(1, "baseline", 1, "teacher", 0, None, None, None),
        target(61, "teacher", 0, "data", 3, 4.2e-10, 0.99997, 0.99997),
        target(61, "purge", 0, "data+teacher", 1, 2.6e-3, 0.76, 0.76),
        target(61, "baseline", 0, "data+teacher", 0, None, None, None),
        target(61, "baseline", 1, "teacher", 0, None, None, None),
    ],
    "canary": {
        "teacher": {"0": {"before": 0.75, "after": 0.0, "teacher_only": 0.0, "reference": 0.0},
                    "1": {"before": 0.0, "after": 0.0, "teacher_only": 0.0, "reference": 0.0}},
        "purge": {"0": {"before": 0.375, "after": 0.0, "teacher_only": 0.375, "reference": 0.0},
                  "1": {"before": 0.0, "after": 0.0, "teacher_only": 0.0, "reference": 0.0}},
        "baseline": {"0": {"before": 0.0, "after": 0.0, "teacher_only": 0.0, "reference": 0.0}},
    },
    "canary_ids": [1, 61, 137, 154, 249, 291, 455, 693],
    "canary_cost": {"teacher": 3415, "teacher_only": {"teacher": 3415, "students": 0},
                    "purge": {"teacher": 3415, "students": 3396}, "baseline": {"teacher": 3415, "students": 6912}},
    "contrast": {
        "method": "fine-tuning on the retained data (approximate unlearning, a contrast)",
        "constituents": ["teacher-0", "purge-0"],
        "rows": [{"sample_id": s, "role": r, "constituent": 0} for s in (1, 61) for r in ("teacher", "purge")],
        "budget_sample_steps": {"teacher-0": 3415, "purge-0": 3396},
        "spent_sample_steps": {"teacher-0": 3440, "purge-0": 3420},
        "relearning": {"purge": [point(0, [0.77, 0.85, 0.99997, 0.76]), point(1, [0.5, 0.7, 0.6, 0.8])],
                       "approximate": [point(0, [8e-4, 0.38, 4.5e-4, 0.9]), point(1, [2e-3, 0.3, 1e-3, 0.5])],
                       "reference": [point(0, [0.77, 0.85, 0.99997, 0.76]), point(1, [0.5, 0.7, 0.6, 0.8])]},
        "quantisation": {"purge": {"8": point(0, [0.7, 0.8, 0.9, 0.7]), "4": point(0, [0.6, 0.8, 0.9, 0.7])},
                         "approximate": {"8": point(0, [9e-4, 0.3, 5e-4, 0.9]), "4": point(0, [2e-3, 0.3, 3e-4, 0.8])},
                         "reference": {"8": point(0, [0.7, 0.8, 0.9, 0.7]), "4": point(0, [0.6, 0.8, 0.9, 0.7])}},
    },
}


def unverified(report: dict) -> dict:
    """The report as it reads before verify: no reference anywhere."""
    out = copy.deepcopy(report)
    for row in out["membership"]:
        row["p_reference"] = None
    for rates in out["canary"].values():
        for rate in rates.values():
            rate["reference"] = None
    out["contrast"]["relearning"]["reference"] = None
    out["contrast"]["quantisation"]["reference"] = None
    out["verified"] = False
    return out


@pytest.mark.parametrize(("p", "text"), [(0.614, "0.61"), (2.3e-9, "2e-9"), (1.2e-3, "1e-3"), (0.0, "<1e-300"),
                                         (None, "—"), (math.nan, "—")])
def test_p_values_read_as_words(p, text):
    assert evidence.p_text(p) == text


def test_each_sample_reads_before_after_and_reference_with_the_baseline_explained():
    lines = ev.sample_lines(REPORT, 1)
    assert lines[0] == "Teacher 1: p 9e-10 → **0.77** (reference 0.77 ✓)"
    assert lines[1].startswith("PURGE Student 1 (held it; taught by Teacher 1): p 1e-3 → **0.85**")
    assert lines[-1] == "Baseline (SISA) students 1, 2: no test (every one was taught by Teacher 1)"
    assert "verify to compute" in ev.sample_lines(unverified(REPORT), 1)[0]
    assert "nothing to compare against" in ev.no_reference_note(REPORT)  # a record from before extra references


def test_students_no_sibling_can_audit_read_as_one_line_tested_against_extra_references():
    report = copy.deepcopy(REPORT)
    for row in report["membership"]:
        if row["role"] == "baseline":
            row.update(p_before=0.5 + row["constituent"] / 10, p_after=0.9, p_reference=0.9, extra_references=3)
    report["membership"] += [{**target(1, "baseline", k, "teacher", 0, 0.6, 0.9, 0.9), "extra_references": 3}
                             for k in (2, 3)]
    lines = ev.sample_lines(report, 1)
    assert lines[-1] == ("Baseline (SISA) Students 1–4 (taught by Teacher 1, or held it): median p 0.60 → "
                         "**0.90** (reference ✓)")
    assert len(lines) == 3  # the teacher, the PURGE student, the baseline's four in one
    assert "tested against 3 extra reference models" in ev.no_reference_note(report)


def test_the_verdict_counts_member_like_rows_and_says_after_equals_reference():
    line = ev.verdict_line(REPORT)
    assert "4 of 4 before the request, 0 after" in line and "bit for bit" in line
    assert "Verify to score" in ev.verdict_line(unverified(REPORT))
    assert "without scoring" in ev.verdict_line({"samples": [1], "membership": []})


def test_the_strip_draws_teacher_and_purge_rows_on_minus_log10_p():
    fig = ev.strip_figure(REPORT)
    after = next(t for t in fig.data if t.name == ev.STATE_TITLES["after"])
    assert list(after.y) == ["#1 · Teacher 1", "#1 · PURGE Student 1", "#61 · Teacher 1", "#61 · PURGE Student 1"]
    assert after.x[0] == pytest.approx(-math.log10(0.77))
    reference = next(t for t in fig.data if t.name == ev.STATE_TITLES["reference"])
    assert list(reference.x) == list(after.x)  # the dot sits in its ring
    assert any(s.x0 == pytest.approx(-math.log10(evidence.ALPHA)) for s in fig.layout.shapes)  # the p = 0.05 line
    assert ev.STATE_TITLES["reference"] not in {t.name for t in ev.strip_figure(unverified(REPORT)).data}
    assert ev.strip_figure({"samples": [], "membership": []}) is None


def test_a_large_request_draws_the_samples_most_member_like_before():
    report = copy.deepcopy(REPORT)
    assert ev.shown_samples(report, limit=1) == [61]  # 4.2e-10 < 9e-10 on their teacher


def test_canary_bars_per_constituent_grouped_by_role():
    frame = canary_views.canary_frame(REPORT)
    assert set(zip(frame["role"], frame["constituent"], strict=True)) == {("teacher", 0), ("purge", 0),
                                                                          ("baseline", 0)}  # zeros left out
    assert len(canary_views.canary_frame(REPORT, every=True)) == 5 * len(canary_views.CANARY_STATES)
    fig = canary_views.canary_figure(REPORT)
    assert [t.name for t in fig.data] == [name for _, name, _ in canary_views.CANARY_STATES]
    teacher_only = fig.data[1]
    assert list(teacher_only.y) == [0.0, 37.5, 0.0]  # the student still carries them with the teacher alone forgotten
    assert len(canary_views.canary_figure(unverified(REPORT)).data) == 3  # no reference bars before verify
    assert canary_views.canary_figure({**REPORT, "canary": {}}) is None
    assert evidence.exposed_canary_rates(REPORT) == (0.375, 0.0)
    assert "3,415 + 3,396" in canary_views.canary_cost_text(REPORT)


def test_the_contrast_draws_purge_on_the_reference_and_the_approximate_method_above():
    frame = canary_views.contrast_frame(REPORT)
    start = frame[(frame["test"] == "round 0") & (frame["role"] == "teacher")].set_index("series")["median_p"]
    assert start["purge"] == start["reference"] and start["approximate"] < evidence.ALPHA
    assert list(dict.fromkeys(frame["test"])) == ["round 0", "round 1", "8-bit", "4-bit"]
    fig = canary_views.contrast_figure(REPORT)
    by_name = {}
    for trace in fig.data:
        by_name.setdefault(trace.name, []).append(list(trace.y))
    assert by_name[ev.SERIES_TITLES["purge"]] == by_name[ev.SERIES_TITLES["reference"]]
    assert fig.data[0].name == ev.SERIES_TITLES["reference"] and fig.data[0].line.width > fig.data[2].line.width
    assert "equals the reference's point for point" in canary_views.contrast_summary(REPORT)
    assert "Verify to draw" in canary_views.contrast_summary(unverified(REPORT))
    assert "6,860 sample-steps (PURGE spent 6,811" in canary_views.spent_text(REPORT)
    assert canary_views.contrast_figure({**REPORT, "contrast": None}) is None


def test_compare_puts_each_requests_evidence_beside_its_cost():
    record = {"request_id": 1, "status": "done", "sample_ids": [1, 61],
              "cost": {"teacher": {"sample_steps": 3415}, "purge": {"sample_steps": 3396}}}
    frame = compare_views.evidence_frame([record, {"request_id": 2, "status": "running"}], {1: REPORT})
    row = frame.iloc[0]
    assert len(frame) == 1 and row["Cost (sample-steps)"] == 6811
    assert row["p before (min)"] == "4e-10" and row["p after (median)"] == "0.88"
    assert row["Member-like"] == "4 → 0 of 4"
    assert row["Canaries"] == "38 % → 0 %"
    assert compare_views.evidence_frame([record], {1: unverified(REPORT)}).loc[0, "p reference (median)"] \
        == "not verified"
    no_canaries = compare_views.evidence_frame([record], {1: {**REPORT, "canary": {}}})
    assert "Canaries" not in no_canaries.columns


def test_a_student_side_sample_reads_without_a_teacher():
    report = {"samples": [5], "membership": [
        {**target(5, "purge", 1, "data", 1, 0.02, 0.4, None), "teacher_id": None},
        {**target(5, "baseline", 1, "data", 1, 0.03, 0.5, None), "teacher_id": None}]}
    assert ev.sample_lines(report, 5) == [
        "PURGE Student 2 (held it): p 0.02 → **0.40** (reference: verify to compute)",
        "Baseline (SISA) Student 2 (held it): p 0.03 → **0.50** (reference: verify to compute)"]
    assert ev.no_reference_note(report) is None
    assert list(ev.strip_figure(report).data[-1].y) == ["#5 · PURGE Student 2"]
