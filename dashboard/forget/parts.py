"""What the Forget page draws: the selection (kept in st.session_state) and its controls, the blast radius
of a selection, and the results of the latest request. Drawn with st.* from engine output the page hands
over: the page calls the engine (scope, cost, jobs), these draw it.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from dashboard.forget import evidence_parts
from dashboard.forget import figures as forget_figures
from dashboard.forget import views as forget_views
from dashboard.shared import components, evidence, figures, grid, state, views
from dashboard.shared.components import NUMBERS
from dashboard.shared.cost import COST_CAPTION, cost_frame, drawn
from purge_engine import (
    manifest_path,
    memorisation,
    parse_ids,
    reproduce_command,
    reproduce_snippet,
    training_cost,
)

MAX_RANDOM = 1000

PERCENTILE = st.column_config.NumberColumn(format="%.0f", help="0-100: the share of test samples with a lower loss")
VERDICT_ICONS = {"exact": ":material/verified:", "differs": ":material/error:", "not claimed": ":material/help:",
                 "not verified": ":material/pending:"}


# -- the selection (state.SELECTED: sorted 0-based ids) ---------------------------------------------
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


def selection_controls(bundle, plan) -> None:
    """Add samples by class, by teacher shard, by id list, or k at random."""
    pool = forget_views.available_samples(plan)
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


# -- the gallery's order ---------------------------------------------------------------------------------
GALLERY_ORDERS = {"id": "In id order", "memorised": "Most memorised first"}
MEMORISED_CAPTION = ("Most memorised first: each sample scored on the teacher that holds it against the teachers "
                     "that never saw it (the p under each image; tiny = the teacher memorised it). Atypical samples "
                     "and flipped-label canaries come first: the ones whose forgetting shows most.")


@st.cache_data(max_entries=16, show_spinner="Ranking the samples, the most memorised first…")
def memorisation_ranking(_exp, run_dir: str, signature: tuple) -> dict:
    """{"order": sample ids most memorised first, "notes": id -> "p 3e-6"} of the run's teachers
    (audit.memorisation), once per run state: signature says which (run_signature)."""
    with _exp.writing("ranking the most memorised samples", shared=True):
        ranking = memorisation(_exp)
    notes = {int(i): f"p {evidence.p_text(p)}" for i, p in zip(ranking["sample_id"], ranking["p"], strict=True)}
    return {"order": ranking["sample_id"], "notes": notes}


def run_signature(exp) -> tuple:
    """What the ranking depends on: the samples forgotten, the latest request and when the run was trained."""
    manifest = manifest_path(exp.store)
    return len(exp.plan.forgotten), exp.latest_request(), manifest.stat().st_mtime_ns if manifest.is_file() else 0


def gallery_order(exp, busy: bool) -> tuple:
    """The order control; (ids in order, notes) for the gallery, or (None, None) for id order. While a job
    runs on the run (busy) its constituents change under it: the last ranking is kept until it ends."""
    choice = st.radio("Gallery order", list(GALLERY_ORDERS), format_func=GALLERY_ORDERS.get, horizontal=True,
                      key=state.GALLERY_ORDER, on_change=_first_page,
                      help="Most memorised first: the samples the teachers are most confident on, compared with "
                           "teachers that never saw them (a per-sample membership test).")
    if choice != "memorised":
        return None, None
    run_dir = str(exp.store.root)
    if not busy:
        st.session_state[state.MEMORISED_LAST] = (run_dir, memorisation_ranking(exp, run_dir, run_signature(exp)))
    last = st.session_state.get(state.MEMORISED_LAST)
    if last is None or last[0] != run_dir:
        st.caption("The ranking is computed once the running job has ended: in id order meanwhile.")
        return None, None
    st.caption(MEMORISED_CAPTION)
    return last[1]["order"], last[1]["notes"]


def _first_page() -> None:
    if not components.in_fragment_rerun():  # a job's poll replaying the radio is not a pick
        st.session_state[state.FORGET_PAGE] = 1


def selection_line(ids: list[int]) -> None:
    """How many samples are selected, and the button that clears them."""
    chosen, clear = st.columns([5, 1])
    chosen.markdown(f"**Selected: {len(ids)}** " + (forget_views.id_list(ids) if ids else
                                                    "— tick images below, or add samples above"))
    clear.button("Clear selection", key=state.CLEAR, on_click=set_selected, args=([],), disabled=not ids)


# -- the blast radius --------------------------------------------------------------------------------
def preview(plan, request, methods: list[str]) -> None:
    """What each method retrains for the selection and what it will cost (request: plan_request's)."""
    describe, scope, cost = plan.describe(), request.scope, request.predicted
    st.subheader("Blast radius")
    headline(drawn(cost, methods), training_cost(plan), request.why, "advantage_preview")
    st.markdown("\n".join(f"- {line}" for line in forget_views.scope_summary(describe, scope.to_dict(), methods)))
    st.plotly_chart(figures.mapping_graph(describe, affected=scope.to_dict()), key="blast_radius")
    st.caption("Planned steps per constituent: kept (·), restored from its checkpoint (↺), retrained (↻).")
    st.html(grid.retrain_grid_html(grid.grid_shape(plan, ["teacher", *methods]),
                                   grid.planned_cells(plan, scope, ["teacher", *methods])))
    st.dataframe(cost_frame(cost, methods), hide_index=True,
                 column_config={"Predicted sample-steps": NUMBERS, "Label forward passes": NUMBERS})
    st.caption("Predicted from the plan, exactly. " + COST_CAPTION)


def headline(cost: dict, training: dict, sentence: str | None, key: str) -> None:
    """The share of its own training each method retrains, and PURGE's advantage (advantage.py)."""
    with st.container(key=key):
        for column, metric in zip(st.columns(4), forget_views.advantage_headline(cost, training), strict=True):
            column.metric(metric["label"], metric["value"], help=metric["help"])
        if sentence:
            st.caption(sentence)


# -- the latest request's results ---------------------------------------------------------------------
def results(record: dict, training: dict, evidence: dict | None = None, bundle=None) -> None:
    """A served request from the ledger (so it survives a restart): its evidence of forgetting first, then
    cost, accuracy and the run with and without the samples (the verdict is drawn under the Verify button:
    verdict()). training: plan.training_cost of the run, for the retrained shares; evidence:
    purge_engine.audit.report of the request (None: left out); bundle: the run's data, for the pictures."""
    st.header(f"Request {record['request_id']}: results")
    st.caption(f"Forgot {len(record['sample_ids'])} sample(s): {forget_views.id_list(record['sample_ids'])} · "
               f"served {record.get('done_at', '')}")
    if evidence is not None:
        evidence_parts.evidence_panel(evidence, bundle)
    st.subheader("Cost and accuracy")
    if record.get("status") == "done":
        headline(drawn(record["predicted"], record["methods"]), training, (record.get("advantage") or {}).get("why"),
                 "advantage_results")
    st.dataframe(views.shown_cost_table(views.request_cost_table(record)), hide_index=True)
    st.caption("Measured sample-steps equal the predicted ones: the engine retrained exactly the planned steps. "
               + COST_CAPTION)
    st.markdown("**Accuracy (%) before and after**")
    st.dataframe(forget_views.accuracy_table(record), hide_index=True)
    membership(record)
    with_without(record)


def verdict(record: dict) -> None:
    """The request's exactness verdict from the ledger: "**Exact.** <what was compared>", green when exact."""
    word, sentence = views.verdict(record)
    box = {"exact": st.success, "differs": st.error, "not claimed": st.warning}.get(word, st.info)
    box(f"**{word.capitalize()}.** {sentence}", icon=VERDICT_ICONS[word])


def with_without(record: dict) -> None:
    """The run before and after the request, constituent by constituent (what "exact unlearning" means)."""
    frame = forget_views.before_after_frame(record)
    if frame.empty:
        return
    with st.container(key="before_after"):
        st.subheader("With and without the samples")
        st.markdown(forget_views.change_summary(frame) + ". Only the constituents the samples reached changed; every "
                    "other one holds exactly the parameters it had. " + (
                        "Each retrained one equals the from-scratch reference." if record.get("exact") else
                        "Verify to put the from-scratch reference beside them."))
        percent = st.column_config.NumberColumn(format="%.1f %%")
        st.dataframe(frame, hide_index=True, column_config={
            name: percent for name in frame.columns if "accuracy" in name or "P(true" in name})
        st.caption("Hashes: SHA-256 of each constituent's parameters, first 10 characters. P(true label) of "
                   "forgotten: the constituent's mean softmax probability of the forgotten samples' true labels "
                   "(a model that never saw a sample may still classify it well: forgetting is not misclassifying).")


def membership(record: dict) -> None:
    """The population-level membership check of the request, collapsed under the per-sample evidence:
    AUC with its interval, and where the forgotten samples' losses fall."""
    if not record.get("membership_before"):
        return  # served without scoring
    with st.expander("Population-level illustration: a loss-threshold attack (secondary; not a proof of forgetting)"):
        _membership(record)


def _membership(record: dict) -> None:
    st.markdown("**Membership check** — an illustrative loss-threshold attack over all samples, not a per-sample "
                "test: the evidence above is the one to read. A model that never saw a sample may still fit it "
                "well, so a low loss is weak evidence either way.")
    st.dataframe(forget_views.membership_table(record), hide_index=True,
                 column_config={"Forgotten: loss percentile before": PERCENTILE,
                                "Forgotten: loss percentile after": PERCENTILE})
    st.caption("The attack (Yeom et al., 2018) calls a sample a member when its loss is at most the mean loss on "
               "the model's own training samples. AUC: how well the loss tells those samples from test samples, "
               "which the models never saw (0.5 = chance; in brackets a 95 % bootstrap interval). Loss percentile: "
               "where the forgotten samples' losses fall among test losses (near 0: they look trained on; near 50: "
               "they look unseen). Rates in %.")
    figure = forget_figures.membership_figure(record)
    if figure is not None:
        st.plotly_chart(figure, key="membership_chart")
        st.caption(forget_figures.MEMBERSHIP_CAPTION)


def reproduce(config, run_dir, record: dict, earlier: list[list[int]]) -> None:
    """The commands and the Python that redo the run and its requests, this one last."""
    with st.expander("Reproduce this run and its requests from the command line or Python"):
        st.code(reproduce_command(config, str(run_dir), record["sample_ids"], earlier), language="bash")
        st.code(reproduce_snippet(config, str(run_dir), record["sample_ids"], earlier), language="python")
