"""Compare: the run's forget ledger, cumulative cost of PURGE vs the baseline vs full retraining,
accuracy over the request history, each request's evidence of forgetting beside its cost, and a
certificate per request."""


import streamlit as st

from dashboard.compare import figures, parts
from dashboard.compare import views as compare_views
from dashboard.shared import components, state
from purge_engine import make_plan, report, run_is_busy


def running_request(exp, ledger) -> int | None:
    """The request a forget job, or another process holding the run's lock, is working on now (the
    latest unfinished one), if any; a journaled request nobody holds is one a dead process left."""
    job = state.registry().running(exp.store.root)
    pending = ledger.pending()
    serving = (job is not None and job.kind == "forget") or (job is None and run_is_busy(exp.store) is not None)
    return pending[-1] if serving and pending else None


st.title("Compare")
exp = components.open_current_run()
if exp is None:
    st.stop()
ledger = exp.ledger
request_ids = sorted({e["request_id"] for e in ledger.entries()})
if not request_ids:
    st.info("This run has served no forget request yet. Serve one on the **Forget** page; its cost, accuracy and "
            "certificate will appear here.", icon=":material/info:")
    st.page_link("app_pages/forget.py", label="Go to the Forget page", icon=":material/delete_sweep:")
    st.stop()
records = [ledger.record(r) for r in request_ids]
cumulative = compare_views.cumulative_cost_frame(records)
if cumulative.empty:
    st.info("No request has finished yet: costs and accuracy appear once one is done.", icon=":material/info:")
else:
    parts.headline(cumulative, records)
    parts.cost_view(cumulative)
    parts.evidence_view(records, {r["request_id"]: report(exp, r["request_id"], top=0) for r in records
                                  if r.get("status") == "done"})
    st.subheader("Accuracy over the request history")
    st.plotly_chart(figures.accuracy_figure(compare_views.accuracy_frame(records)), key="compare_accuracy_chart")
    st.caption("Test accuracy of each ensemble before the first request (0) and after each one. A measured full "
               "retrain (diamond) lands on the PURGE students when unlearning is exact.")
locations = make_plan(exp.config, exp.plan.n_pool).locations()  # where each sample sat before any forgetting
parts.ledger_view(compare_views.ledger_frame(records, locations, running_request(exp, ledger)), ledger,
                  exp.store.root.name)
parts.certificate_view(ledger, request_ids, exp.store.root.name)
