"""What the Compare page draws: the headline, the cumulative cost, cost beside evidence per request, the
ledger and a request's certificate. Drawn with st.* from the ledger records and reports the page hands
over.
"""

from __future__ import annotations

import json

import streamlit as st

from dashboard.compare import figures
from dashboard.compare import views as compare_views
from dashboard.shared import cost
from dashboard.shared.components import NUMBERS

UNIT = "compare_unit"  # radio: sample-steps or seconds
CERTIFICATE_REQUEST = "certificate_request"
CERTIFICATE_DOWNLOAD = "certificate_download"
LEDGER_CSV = "ledger_csv"
UNIT_TITLES = {"sample_steps": "Sample-steps (samples × epochs)", "seconds": "Seconds (wall clock)"}

SECONDS = st.column_config.NumberColumn(format="%.2f")


def headline(cumulative, records) -> None:
    """Requests served, samples forgotten, and the two ratios (cost.py), each divided out of the totals
    table drawn under them (cost_view)."""
    totals = compare_views.totals_of(compare_views.cost_totals(cumulative))
    forgotten = sum(len(r.get("sample_ids", [])) for r in records if r.get("status") == "done")
    columns = st.columns([1, 1, 2, 2])
    columns[0].metric("Requests served", sum(r.get("status") == "done" for r in records))
    columns[1].metric("Samples forgotten", f"{forgotten:,}")
    for column, metric in zip(columns[2:], (cost.full_ratio_metric(totals), cost.advantage_metric(totals)),
                              strict=True):
        column.metric(metric["label"], metric["value"], help=metric["help"] + " Summed over every request served.")


def cost_view(cumulative) -> None:
    st.subheader("Cumulative cost")
    unit = st.radio("Unit", list(UNIT_TITLES), format_func=UNIT_TITLES.get, horizontal=True, key=UNIT)
    st.plotly_chart(figures.cumulative_cost_figure(cumulative, unit), key="compare_cost_chart")
    note = ("Teacher retraining is its own line, the same for both methods; PURGE and the baseline count their "
            "students only; full retrain = every teacher and every PURGE student from scratch, counted exactly "
            "from the plan. The ratios above divide these totals.")
    if unit == "seconds" and cumulative.loc[cumulative["unit"] == "seconds", "estimated"].any():
        note += (f" Dashed line: open markers are full-retrain seconds {compare_views.ESTIMATE_NOTE} (no full "
                 "retrain was run for those requests; filled ones were measured). Tick *Also retrain everything "
                 "from scratch* on the Forget page to measure one.")
    st.caption(note)
    st.dataframe(compare_views.cost_totals(cumulative), hide_index=True,
                 column_config={"Sample-steps": NUMBERS, "Seconds": SECONDS})


def evidence_view(records, reports) -> None:
    """Each request's cost beside its evidence of forgetting (the Forget page draws it per sample)."""
    frame = compare_views.evidence_frame(records, reports)
    if frame.empty:
        return
    st.subheader("Cost and evidence per request")
    text = st.column_config.TextColumn
    st.dataframe(frame, hide_index=True, column_config={
        "Cost (sample-steps)": st.column_config.NumberColumn(
            format="localized", help="Measured: the teacher retraining plus the PURGE students'."),
        "p before (min)": text(help="The smallest p of the forgotten samples on the teachers that held them, before."),
        "p after (median)": text(help="The median p on the same teachers after the request."),
        "p reference (median)": text(help="The median p on the from-scratch reference's teachers (after Verify)."),
        "Member-like": text(help="Teacher and PURGE-student rows with p < 0.05: before → after, of all."),
        "Canaries": text(help="Canary rate of the PURGE students exposed to the request: before → after.")})
    st.caption("p: the membership test of each forgotten sample on the teacher that held it, against the teachers "
               "that never saw it (small = looks like a member; an unseen sample gets about 0.05 to 1). After an "
               "exact request the p after equals the reference's. Member-like: teacher and PURGE-student rows with "
               "p < 0.05, before → after. Canaries: the share of canaries the exposed PURGE students answer with "
               "the planted label, before → after.")


def ledger_view(frame, ledger, run_name: str) -> None:
    st.subheader("Ledger")
    ok, detail = ledger.verify_chain()
    if ok:
        st.success(f"Hash chain intact: {detail}.", icon=":material/link:")
    else:
        st.error(f"Hash chain broken: {detail}.", icon=":material/link_off:")
    st.dataframe(frame, hide_index=True, column_config={
        **{c: NUMBERS for c in compare_views.INT_COLUMNS},
        **dict.fromkeys(compare_views.SECONDS_COLUMNS.values(), SECONDS)})
    st.caption("Steps are 1-based; sample ids as in the train pool. Sample-steps are measured; *predicted* is what "
               "the plan said before the request ran. Pending: journaled, but its process died before it finished "
               "(finish it on the Forget page).")
    st.download_button("Download the ledger (CSV)", frame.to_csv(index=False), f"{run_name}-ledger.csv",
                       "text/csv", key=LEDGER_CSV, icon=":material/download:")


def certificate_view(ledger, request_ids: list[int], run_name: str) -> None:
    st.subheader("Certificate")
    request_id = st.selectbox("Request", request_ids, index=len(request_ids) - 1, key=CERTIFICATE_REQUEST,
                              format_func=lambda r: f"Request {r}")
    certificate = ledger.certificate(request_id)
    st.caption(certificate["caveat"])
    st.download_button("Download the certificate (JSON)", json.dumps(certificate, indent=2),
                       f"{run_name}-request-{request_id}-certificate.json", "application/json",
                       key=CERTIFICATE_DOWNLOAD, icon=":material/verified:")
    with st.expander("Show the certificate"):
        st.json(certificate, expanded=1)
