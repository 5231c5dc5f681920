"""Forget: pick samples, see what they would make each method retrain and what it would cost, run the
request while the constituents x steps grid shows only the affected parts move (a full retrain, when
asked, in a panel of its own below), then read the evidence of forgetting (each sample's membership
p-values), the measured cost and accuracy, and verify the result is exact against a from-scratch reference
(its own panel, under the results: the request's grid stays on screen)."""

import streamlit as st

from dashboard.forget import parts
from dashboard.shared import components, grid, state
from dashboard.shared.jobs import SUCCEEDED, Job
from purge_engine import (
    METHODS,
    Experiment,
    RequestPlan,
    job_sample_steps,
    manifest_path,
    plan_request,
    recipes,
    report,
    run_is_busy,
    training_cost,
)


def run_request(exp: Experiment, request: RequestPlan) -> None:
    """The request as previewed (planned once: the preview, the job's total and the work read it)."""
    run_dir, executor = exp.store.root, state.job_executor()

    def work(on_event, should_stop):
        return recipes.forget(run_dir, request, request.methods, full_retrain=request.full_retrain,
                              choices=state.job_choices(executor), on_event=on_event,
                              should_stop=should_stop)["request_id"]

    n = len(request.sample_ids)
    if components.start_job(run_dir, "forget", f"Forgetting {n} sample{'s' * (n != 1)}", work):
        parts.set_selected([])
        st.rerun()


def verify_button(exp: Experiment, request_id: int) -> None:
    run_dir = exp.store.root
    reason = components.busy_reason(run_dir)
    if st.button("Verify: train a from-scratch reference and compare", key=state.VERIFY,
                 disabled=reason is not None, help=reason, icon=":material/fact_check:"):
        executor = state.job_executor()  # None: the run's own path, which the reference trains on (verify.py)

        def work(on_event, should_stop):
            return recipes.verify(run_dir, choices=state.job_choices(executor), on_event=on_event,
                                  should_stop=should_stop)

        if components.start_job(run_dir, "verify", f"Verifying request {request_id} against a from-scratch reference",
                                work):
            st.rerun()


def verification(exp: Experiment, record: dict, job: Job | None) -> None:
    """The Verify button, its verdict right under it (where the viewport is when it is clicked) and the
    reference's own progress below: a from-scratch run of everything, never drawn over the request's grid."""
    request_id, roles = record["request_id"], ["teacher", *record["methods"]]
    steps = job_sample_steps(exp.plan, record["methods"])
    with st.container(key=state.VERIFICATION):
        st.subheader("Verification")
        st.caption(f"Verify trains a from-scratch reference: every constituent from its seeded initialisation, on "
                   f"the data rebuilt without every forgotten sample ({steps:,} sample-steps, as much as training "
                   "the whole run), then compares each parameter of this run with it (`torch.equal`). It checks "
                   "the request; it is not part of its cost.")
        verify_button(exp, request_id)
        if job is None or not job.snapshot().running:
            parts.verdict(record)
        if job is not None:
            components.job_view(job, grid.grid_shape(exp.plan, roles), grid_key=state.VERIFY_GRID)


def latest_results(exp: Experiment, verify_job: Job | None) -> None:
    """The latest request, from the ledger: its results, its verification, how to reproduce it."""
    request_id = exp.latest_request()
    if request_id is None:
        return
    record = exp.ledger.record(request_id)
    parts.results(record, training_cost(exp.plan), report(exp, request_id, top=0), exp.bundle)
    if verify_job is not None:  # a verification of an earlier request is not this one's
        snap = verify_job.snapshot()
        verify_job = None if snap.status == SUCCEEDED and snap.result["request_id"] != request_id else verify_job
    verification(exp, record, verify_job)
    earlier = [exp.ledger.record(r)["sample_ids"] for r in range(1, request_id)]
    parts.reproduce(exp.config, exp.store.root, record, earlier)


def pending_request(exp: Experiment) -> None:
    """A request a dead process left half done: offer to finish it (as a job, not in the page)."""
    pending = exp.ledger.pending()
    run_dir = exp.store.root
    if not pending or state.registry().running(run_dir) is not None:
        return
    st.warning(f"Request {pending[0]} was journaled but not finished (the process stopped mid-request). "
               "Finishing it retrains what is left; nothing done so far is lost.", icon=":material/restore:")
    if st.button(f"Finish request {pending[0]}", key=state.FINISH_PENDING):
        executor = state.job_executor()

        def work(on_event, should_stop):
            exp = recipes.open_run(run_dir, state.job_choices(executor))
            return [report.request_id for report in exp.finish_pending(on_event, should_stop)]

        if components.start_job(run_dir, "forget", f"Finishing request {pending[0]}", work):
            st.rerun()


st.title("Forget samples")
st.markdown("Pick samples to remove. Each method retrains only what the samples touched: **PURGE** the one "
            "teacher and the part of the one student that came after that teacher entered; the **baseline** "
            "student, taught by the whole ensemble, retrains every student after any teacher-side deletion.")
exp = components.open_current_run()
if exp is None:
    st.stop()
run_dir = exp.store.root
components.repair_result(run_dir)  # a repair finished on this run: what it proved
# The run's running job (any kind, any viewer's), else the finished request or verification in the URL.
job = state.current_job(run_dir, kinds=("forget", "verify"))
if job is not None and job.kind == "train":
    st.info("This run is training (started on **Setup**): forget requests can start once it is done.",
            icon=":material/hourglass:")
    components.job_view(job, grid.grid_shape(exp.plan, ["teacher", *METHODS]))
    st.stop()
# Another process (a CLI forget, say) holds the run: say so, rather than "not trained" or "stopped mid-request".
busy = run_is_busy(exp.store) if state.registry().running(run_dir) is None else None
if busy is not None:
    st.info(f"{busy[0].upper()}{busy[1:]} in another process on this run: its results show here once it is "
            "done (reload the page).", icon=":material/hourglass:")
    st.stop()
trained = exp.trained_roles()
methods = [m for m in METHODS if m in trained] if job is None else list(METHODS)
if job is None and ("teacher" not in trained or not methods):
    if manifest_path(exp.store).is_file():  # it was trained once: files are missing or damaged since
        st.error("This run's manifest records a trained run, but some of its files are missing or damaged.",
                 icon=":material/error:")
        components.repair_offer(run_dir)
    else:
        st.info("This run is not trained yet (or its training was interrupted). Train it on the **Setup** page.",
                icon=":material/info:")
    st.stop()
pending_request(exp)

st.subheader("Select samples")
parts.selection_controls(exp.bundle, exp.plan)
ids = parts.selected()
parts.selection_line(ids)
with st.expander("Sample gallery", expanded=True):
    order, notes = parts.gallery_order(exp, busy=components.busy_reason(run_dir) is not None)
    components.sample_gallery(exp.bundle, exp.plan, state.FORGET_PAGE, "Gallery page", on_pick=parts.toggle,
                              picked=set(ids), order=order, notes=notes)

full = st.session_state.get(state.FULL_RETRAIN, False)
request = None
if ids:
    try:
        request = plan_request(exp.plan, ids, methods, full)  # once: the preview, the total and the work
    except ValueError as err:
        st.error(str(err), icon=":material/error:")
    else:
        parts.preview(exp.plan, request, methods)
st.subheader("Run")
st.checkbox("Also retrain everything from scratch, to compare (slow: the cost unlearning avoids)",
            key=state.FULL_RETRAIN)
reason = components.busy_reason(run_dir) or (None if request else "Disabled: select at least one sample.")
if st.button(f"Forget {len(ids)} sample{'s' * (len(ids) != 1)}", key=state.FORGET, type="primary",
             disabled=reason is not None, help=reason, icon=":material/delete:"):
    run_request(exp, request)
if reason:
    st.caption(reason)
# The request's own job (its grid and, when asked, the full retrain's), also while a verification is shown.
served = job if job is not None and job.kind == "forget" else state.request_job(run_dir, exp.latest_request())
if served is not None:
    components.job_view(served, grid.grid_shape(exp.plan, ["teacher", *methods]))
if served is None or not served.snapshot().running:
    latest_results(exp, job if job is not None and job.kind == "verify" else None)
