"""Forget: pick samples, see what they would make each method retrain and what it would cost, run the
request while the constituents x steps grid shows only the affected parts move, then read the
measured cost, the accuracy and membership checks, and verify the result is exact."""

import numpy as np
import streamlit as st

from dashboard import components, figures, state, views
from purge_engine.experiment import Experiment
from purge_engine.plan import METHODS, job_sample_steps, predicted_cost, retrain_scope
from purge_engine.reproduce import reproduce_command, reproduce_snippet
from purge_engine.requests import parse_ids

GRID_COLUMNS = 6
MAX_RANDOM = 1000
PIXELATED = "<style>.st-key-sample_grid img { image-rendering: pixelated; }</style>"
NUMBERS = st.column_config.NumberColumn(format="localized")
PERCENTILE = st.column_config.NumberColumn(format="%.0f", help="0-100: the share of test samples with a lower loss")
VERDICT_ICONS = {"exact": ":material/verified:", "differs": ":material/error:", "not claimed": ":material/help:",
                 "not verified": ":material/pending:"}


# -- selection ------------------------------------------------------------------------------------
def selected() -> list[int]:
    return sorted(st.session_state.setdefault(state.SELECTED, []))


def set_selected(ids) -> None:
    st.session_state[state.SELECTED] = sorted({int(i) for i in ids})


def toggle(sample_id: int) -> None:
    """Gallery checkbox callback: runs before the rerun, so the page sees the new selection. The page
    sets the boxes itself (clearing them once a request starts): a job's poll may replay older ticks."""
    if components.in_fragment_rerun():
        return
    ids = set(selected())
    ids.symmetric_difference_update({sample_id})
    set_selected(ids)


def add(ids) -> None:
    set_selected(set(selected()) | {int(i) for i in ids})


def available(exp: Experiment) -> np.ndarray:
    """Samples that can still be forgotten: in some shard, not yet forgotten."""
    used = np.union1d(exp.plan.all_teacher_samples(), exp.plan.all_student_samples())
    return np.setdiff1d(used, np.fromiter(exp.plan.forgotten, dtype=np.int64, count=len(exp.plan.forgotten)))


def selection_controls(exp: Experiment) -> None:
    """Add samples by class, by teacher shard, by id list, or k at random; clear."""
    bundle, plan = exp.bundle, exp.plan
    pool = available(exp)
    by_class, by_teacher, by_ids, at_random = st.columns(4)
    labels = np.asarray(bundle.train_y.cpu())
    name = by_class.selectbox("Every sample of class", bundle.class_names, key=state.BY_CLASS)
    if by_class.button("Add class", key=state.ADD_CLASS, width="stretch"):
        add(np.intersect1d(pool, np.flatnonzero(labels == bundle.class_names.index(name))))
    teacher = by_teacher.selectbox("Every sample of a teacher shard", range(plan.n_teachers), key=state.BY_TEACHER,
                                   format_func=lambda t: f"Teacher {t + 1}")
    if by_teacher.button("Add shard", key=state.ADD_TEACHER, width="stretch"):
        add(np.intersect1d(pool, plan.teacher_shard(teacher)))
    text = by_ids.text_input("Sample ids", placeholder="3, 17, 40-45", key=state.BY_IDS,
                             help=f"Ids of the train pool, 0 to {plan.n_pool - 1}: commas or spaces; ranges "
                                  "like 10-14.")
    if by_ids.button("Add ids", key=state.ADD_IDS, width="stretch"):
        try:
            add(plan.check_request(parse_ids(text, plan.n_pool)))
        except ValueError as err:
            st.error(str(err), icon=":material/error:")
    k = at_random.number_input("Samples at random", 1, MAX_RANDOM, 3, key=state.RANDOM_K)
    if at_random.button("Add at random", key=state.ADD_RANDOM, width="stretch") and pool.size:
        rng = np.random.default_rng()  # a user's pick, not a training choice: no seed needed
        add(rng.choice(np.setdiff1d(pool, selected()), min(int(k), pool.size - len(selected())), replace=False))


def gallery(exp: Experiment) -> None:
    """A page of the train pool: click an image's box to pick it. Captions place each sample in the plan."""
    bundle, plan = exp.bundle, exp.plan
    pages = views.n_pages(bundle.n_train)
    page = st.columns([1, 5])[0].number_input(f"Gallery page (of {pages})", 1, pages, 1, key=state.FORGET_PAGE)
    ids = views.page_ids(bundle.n_train, page)
    images = views.upscale(bundle.images(ids))
    captions = views.sample_grid_frame(bundle, plan, ids)["caption"].tolist()
    chosen = set(selected())
    st.html(PIXELATED)
    with st.container(key=state.SAMPLE_GRID):
        for start in range(0, len(ids), GRID_COLUMNS):
            row = range(start, min(start + GRID_COLUMNS, len(ids)))
            for column, i in zip(st.columns(GRID_COLUMNS)[: len(row)], row, strict=True):
                sample_id = int(ids[i])
                gone = sample_id in plan.forgotten
                column.image(images[i], width="stretch", output_format="PNG")
                key = f"{state.PICK_PREFIX}{sample_id}"
                st.session_state[key] = sample_id in chosen
                column.checkbox(f"#{sample_id} forgotten" if gone else captions[i], key=key, disabled=gone,
                                on_change=toggle, args=(sample_id,))


# -- preview, run, results ---------------------------------------------------------------------------
def preview(exp: Experiment, ids: list[int], methods: list[str]) -> None:
    """The blast radius of the selection: what each method retrains, and what it will cost."""
    try:
        scope = retrain_scope(exp.plan, ids)
    except ValueError as err:
        st.error(str(err), icon=":material/error:")
        return
    describe = exp.plan.describe()
    st.subheader("Blast radius")
    st.markdown("\n".join(f"- {line}" for line in views.scope_summary(describe, scope.to_dict(), methods)))
    st.plotly_chart(figures.mapping_graph(describe, affected=scope.to_dict()), key="blast_radius")
    st.caption("Planned steps per constituent: kept (·), restored from its checkpoint (↺), retrained (↻).")
    st.html(views.retrain_grid_html(views.grid_shape(exp.plan, ["teacher", *methods]),
                                    views.planned_cells(exp.plan, scope, ["teacher", *methods])))
    cost = predicted_cost(exp.plan, scope)
    st.dataframe(views.cost_table({k: v for k, v in cost.items() if k in ("teacher", *methods, "full_retrain")},
                                  "retraining"),
                 hide_index=True, column_config={"Sample-steps": NUMBERS, "Label forward passes": NUMBERS})
    st.caption("Predicted from the plan, exactly: sample-steps = samples × epochs each retrained step trains on. "
               "Teacher retraining is shared by every student method; full retrain = every teacher and every "
               "PURGE student from scratch on the reduced data.")


def run_request(exp: Experiment, ids: list[int], methods: list[str], full: bool) -> None:
    total = job_sample_steps(exp.plan, methods, retrain_scope(exp.plan, ids), full_retrain=full)
    run_dir, executor = exp.store.root, state.job_executor()

    def work(on_event, should_stop):
        return state.open_for_job(run_dir, executor).forget(ids, methods=methods, full_retrain=full,
                                                            on_event=on_event, should_stop=should_stop).request_id

    title = f"Forgetting {len(ids)} sample{'s' * (len(ids) != 1)}"
    if components.start_job(run_dir, "forget", title, work, total):
        set_selected([])
        st.rerun()


def results(exp: Experiment, methods: list[str]) -> None:
    """The latest request, from the ledger (so it survives a restart): cost, accuracy, membership, verdict."""
    request_id = exp.latest_request()
    if request_id is None:
        return
    record = exp.ledger.record(request_id)
    st.header(f"Request {request_id}: results")
    st.caption(f"Forgot {len(record['sample_ids'])} sample(s): {views.id_list(record['sample_ids'])} · "
               f"served {record.get('done_at', '')}")
    st.dataframe(views.request_cost_table(record), hide_index=True,
                 column_config={"Predicted sample-steps": NUMBERS, "Measured sample-steps": NUMBERS,
                                "Label forward passes": NUMBERS,
                                "Seconds": st.column_config.NumberColumn(format="%.2f s")})
    st.caption("Measured sample-steps equal the predicted ones: the engine retrained exactly the planned steps.")
    st.markdown("**Accuracy (%) before and after**")
    st.dataframe(views.accuracy_table(record), hide_index=True)
    membership(record)
    verification(exp, record)
    with st.expander("Reproduce this run and its requests from the command line or Python"):
        earlier = [exp.ledger.record(r)["sample_ids"] for r in range(1, request_id)]
        st.code(reproduce_command(exp.config, str(exp.store.root), record["sample_ids"], earlier), language="bash")
        st.code(reproduce_snippet(exp.config, str(exp.store.root), record["sample_ids"], earlier), language="python")


def membership(record: dict) -> None:
    """The membership check of the request: AUC with its interval, and where the forgotten samples' losses fall."""
    if not record.get("membership_before"):
        return  # served without scoring
    st.markdown("**Membership check** — an illustrative loss-threshold attack, not a proof of forgetting")
    st.dataframe(views.membership_table(record), hide_index=True,
                 column_config={"Forgotten: loss percentile before": PERCENTILE,
                                "Forgotten: loss percentile after": PERCENTILE})
    st.caption("The attack (Yeom et al., 2018) calls a sample a member when its loss is at most the mean loss on "
               "the model's own training samples. AUC: how well the loss tells those samples from test samples, "
               "which the models never saw (0.5 = chance; in brackets a 95 % bootstrap interval). Loss percentile: "
               "where the forgotten samples' losses fall among test losses (near 0: they look trained on; near 50: "
               "they look unseen). Rates in %.")
    figure = figures.membership_figure(record)
    if figure is not None:
        st.plotly_chart(figure, key="membership_chart")
        st.caption(figures.MEMBERSHIP_CAPTION)


def verification(exp: Experiment, record: dict) -> None:
    word, sentence = views.verdict(record)
    box = {"exact": st.success, "differs": st.error, "not claimed": st.warning}.get(word, st.info)
    box(f"**{word.capitalize()}.** {sentence}", icon=VERDICT_ICONS[word])
    run_dir = exp.store.root
    reason = components.busy_reason(run_dir)
    if st.button("Verify: retrain the affected constituents from scratch and compare", key=state.VERIFY,
                 disabled=reason is not None, help=reason, icon=":material/fact_check:"):
        executor = state.job_executor()  # the reference trains on the same path (verify.py)

        def work(on_event, should_stop):
            return state.open_for_job(run_dir, executor).verify(on_event=on_event, should_stop=should_stop)

        if components.start_job(run_dir, "verify", f"Verifying request {record['request_id']}", work):
            st.rerun()


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
            exp = state.open_for_job(run_dir, executor, finish_pending=False)
            return [report.request_id for report in exp.finish_pending(on_event)]

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
# The run's running job (any kind, any viewer's), else the finished request or verification in the URL.
job = state.current_job(run_dir, kinds=("forget", "verify"))
if job is not None and job.kind == "train":
    st.info("This run is training (started on **Setup**): forget requests can start once it is done.",
            icon=":material/hourglass:")
    components.job_view(job, views.grid_shape(exp.plan, ["teacher", *METHODS]))
    st.stop()
trained = exp.trained_roles()
methods = [m for m in METHODS if m in trained] if job is None else list(METHODS)
if job is None and ("teacher" not in trained or not methods):
    st.info("This run is not trained yet (or its training was interrupted). Train it on the **Setup** page.",
            icon=":material/info:")
    st.stop()
pending_request(exp)

ids = selected()
st.subheader("Select samples")
selection_controls(exp)
ids = selected()
chosen, clear = st.columns([5, 1])
chosen.markdown(f"**Selected: {len(ids)}** " + (views.id_list(ids) if ids else
                                                "— tick images below, or add samples above"))
clear.button("Clear selection", key=state.CLEAR, on_click=set_selected, args=([],), disabled=not ids)
with st.expander("Sample gallery", expanded=True):
    st.caption("Under each image: #sample id · label · T3/s2 = Teacher 3, slice 2 · S1/c2/s1 = Student 1, chunk 2, "
               "slice 1 (T – / S –: in no teacher / no student shard).")
    gallery(exp)

if ids:
    preview(exp, ids, methods)
st.subheader("Run")
full = st.checkbox("Also retrain everything from scratch, to compare (slow: the cost unlearning avoids)",
                   key=state.FULL_RETRAIN)
reason = components.busy_reason(run_dir) or (None if ids else "Disabled: select at least one sample.")
if st.button(f"Forget {len(ids)} sample{'s' * (len(ids) != 1)}", key=state.FORGET, type="primary",
             disabled=reason is not None, help=reason, icon=":material/delete:"):
    run_request(exp, ids, methods, full)
if reason:
    st.caption(reason)
if job is not None:
    components.job_view(job, views.grid_shape(exp.plan, ["teacher", *methods]))
if job is None or not job.snapshot().running:
    results(exp, methods)
