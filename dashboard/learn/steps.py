"""The Learn page's ten steps: each explains, shows the lesson run's real state and offers the step's
button. Drawn with st.*; a step returns what it measured, which its question quotes (STEP_VIEWS).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from dashboard.learn import lesson
from dashboard.learn import lesson_evidence as evidence
from dashboard.learn.parts import (
    LessonWork,
    accuracy_metrics,
    action,
    canary_dir,
    hidden_until_guessed,
    job_progress,
    planned_grid,
    verdict_box,
)
from dashboard.shared import components, cost, figures, views
from dashboard.shared.components import NUMBERS
from purge_engine import METHODS, planted_labels, predicted_cost, retrain_scope, teacher_label, title


# -- the steps: (lesson run or None, pristine plan, bundle, lesson samples, the page's jobs) -----------
def step_hard(exp, plan, bundle, samples, work: LessonWork) -> None:
    st.markdown(
        "A trained network does not keep its training images, but every weight carries a trace of each of them: "
        "every image nudged every weight in every epoch. When someone asks for their image back (the GDPR's "
        "right to erasure), deleting the file is not enough. The only *exact* way to remove one image's "
        "influence is to train again without it: costly for one model, and the requests keep coming.")
    ids = np.arange(12)
    for column, image, i in zip(st.columns(12), views.upscale(bundle.images(ids), 64), ids, strict=True):
        column.image(image, caption=f"#{i} · {bundle.class_names[int(bundle.train_y[i])]}", output_format="PNG")
    left, right = st.columns(2)
    left.metric("Training images (scikit-learn digits)", f"{plan.n_pool:,}")
    right.metric("One retrain of a single model", f"{plan.n_pool * lesson.LESSON_CONFIG.epochs:,} sample-steps",
                 help="samples × epochs")


def step_sisa(exp, plan, bundle, samples, work: LessonWork) -> None:
    st.markdown(
        "**SISA** (Sharded, Isolated, Sliced, Aggregated) cuts the data into *shards* and trains one *teacher "
        "constituent* per shard; the ensemble votes. Each teacher trains *slice by slice*, saving a checkpoint "
        "after each slice. Forgetting a sample retrains one teacher, from the checkpoint before its slice.")
    st.dataframe(views.teacher_table(plan.describe()).drop(columns=["Feeds"]), hide_index=True)
    action("Train the 4 teachers", "train", work.train(()), None)
    job_progress(plan, ["teacher"])
    if lesson.trained(exp, "teacher"):
        result = exp.evaluate()
        cols = st.columns(1 + plan.n_teachers)
        cols[0].metric(f"{title('teacher')}: test accuracy", views.percent_text(result["accuracy"]["teacher"]))
        for column, (i, value) in zip(cols[1:], enumerate(result["constituents"]["teacher"]), strict=True):
            column.metric(f"{teacher_label(i)} alone", views.percent_text(value))


def step_baseline(exp, plan, bundle, samples, work: LessonWork) -> None:
    st.markdown(
        "We now want small, fast *students* that learn from the teachers' soft labels (knowledge distillation). "
        "The usual way: every student learns every chunk from the **whole teacher ensemble**. Here is what "
        f"forgetting teacher-side sample #{samples['teacher_side']} would cost that baseline, next to PURGE:")
    if hidden_until_guessed(3):
        return
    scope = retrain_scope(plan, [samples["teacher_side"]])
    planned_grid(plan, scope, ["teacher", "purge", "baseline"])
    cost_view(predicted_cost(plan, scope), ("purge", "baseline"))


def cost_view(predicted: dict, methods, record: dict | None = None) -> None:
    """PURGE's advantage over the cost table drawn under it (cost.py: the rows the Forget page draws):
    predicted from the plan, or a served request's record (predicted beside measured)."""
    metric = cost.advantage_metric(cost.drawn(predicted, methods))
    st.metric(metric["label"], metric["value"], help=metric["help"])
    if record is None:
        st.dataframe(cost.cost_frame(predicted, methods), hide_index=True,
                     column_config={"Predicted sample-steps": NUMBERS, "Label forward passes": NUMBERS})
    else:
        st.dataframe(views.shown_cost_table(views.request_cost_table(record)), hide_index=True)
    st.caption(cost.COST_CAPTION)


def step_mapping(exp, plan, bundle, samples, work: LessonWork) -> None:
    st.markdown(
        "**PURGE** restores isolation with a *constituent mapping*: each student is taught only by its own "
        "group of teachers. A teacher's influence now stops at one student.")
    describe = plan.describe()
    st.dataframe(views.mapping_table(describe), hide_index=True)
    st.plotly_chart(figures.mapping_graph(describe, affected=retrain_scope(plan, [samples["teacher_side"]])
                                          .to_dict()), key="learn_mapping")
    st.caption(f"Highlighted: what forgetting #{samples['teacher_side']} (Teacher "
               f"{lesson.TEACHER_SIDE[0] + 1}'s shard) touches.")


def step_labels(exp, plan, bundle, samples, work: LessonWork) -> None:
    st.markdown(
        "Within its group a student does not ask every teacher at once. Its shard is cut into *chunks*, one per "
        "teacher: chunk 1 is labelled by the first teacher, chunk 2 by the mean of the first two, and so on "
        "(*incremental multi-teacher distillation*). Each chunk is cut into slices with checkpoints, as SISA "
        "does. So a teacher influences only the chunks from its own on.")
    st.dataframe(views.label_composition_table(plan), hide_index=True)
    action("Train the students (PURGE, single-teacher, baseline)", "train", work.train(METHODS),
           None if lesson.trained(exp, "teacher") else "Train the teachers first (step 2).")
    job_progress(plan, ["teacher", *METHODS])
    if lesson.trained(exp, "teacher", *METHODS):
        accuracy_metrics(exp.evaluate()["accuracy"])


def deletion_step(exp, plan, bundle, sample_id: int, lead: str, step: int, work: LessonWork) -> None:
    st.markdown(lead)
    image = views.upscale(bundle.images(np.array([sample_id])), 96)[0]
    where = views.sample_grid_frame(bundle, plan, [sample_id])["caption"].iloc[0]
    left, right = st.columns([1, 5])
    left.image(image, caption=where, output_format="PNG")
    roles = ["teacher", *METHODS]
    record = lesson.request_for(exp, sample_id)
    with right:
        if record is not None or not hidden_until_guessed(step):
            st.caption("Planned: kept (·), restored from checkpoint (↺), retrained (↻).")
            planned_grid(plan, retrain_scope(plan, [sample_id]), roles)
    ready = lesson.trained(exp, "teacher", *METHODS)
    reason = ("Train the teachers and students first (steps 2 and 5)." if not ready
              else f"#{sample_id} is already forgotten (request {record['request_id']})." if record else None)
    action(f"Forget #{sample_id}", "forget", work.forget([sample_id]), reason)
    job_progress(plan, roles)
    if record is not None:
        cost_view(record["predicted"], record["methods"], record)
        if sample_id == lesson.lesson_samples(plan)["teacher_side"] and lesson.priced_apart(plan, record):
            st.caption(f"Priced on the lesson run as it stood when #{sample_id} was forgotten: an earlier request "
                       "(step 7's) had already forgotten another sample, so these numbers differ from step 3's, "
                       f"which prices #{sample_id} on the untouched plan.")


def step_teacher_side(exp, plan, bundle, samples, work: LessonWork) -> None:
    deletion_step(exp, plan, bundle, samples["teacher_side"],
                  f"Now a real teacher-side deletion: #{samples['teacher_side']} is in Teacher "
                  f"{lesson.TEACHER_SIDE[0] + 1}'s shard and in no student's. Watch which cells move.", 6, work)


def step_student_side(exp, plan, bundle, samples, work: LessonWork) -> None:
    deletion_step(exp, plan, bundle, samples["student_side"],
                  f"A student-side deletion: #{samples['student_side']} was only in a student's chunk. No teacher "
                  "saw it, so no teacher and no soft label of another slice changes.", 7, work)


def step_exact(exp, plan, bundle, samples, work: LessonWork) -> None:
    st.markdown(
        "Is the unlearned model really the model we would have had without those samples? Verify trains a "
        "from-scratch reference: every constituent, from its seeded initialisation, on the data rebuilt without "
        "the forgotten samples, with the same seeds (as much work as training the whole run again), and "
        "compares every parameter of the unlearned run with it using `torch.equal`.")
    latest = exp.latest_request() if exp is not None else None
    action("Verify the latest request", "verify", work.verify,
           None if latest else "Forget a sample first (step 6 or 7).")
    job_progress(plan, ["teacher", *METHODS])
    if latest:
        verdict_box(exp.ledger.record(latest))
    st.markdown(
        "**Exact versus approximate.** Many unlearning methods also use distillation, but as the *tool* of "
        "forgetting: a student is pushed to match a teacher on retained data and to diverge (or match a "
        "'bad teacher') on the forgotten data, as in SCRUB or bad-teacher unlearning. They are fast, but "
        "the result only *looks* forgotten: they are judged by statistics such as membership attacks, and "
        "nothing says the model equals one that never saw the data. PURGE uses distillation only to *train*, "
        "and keeps SISA's guarantee: what you verified above is the very model training without the samples "
        "gives, at a fraction of the cost of retraining everything.")


# -- the canary run (steps 9 and 10): what leaks through distillation, exact against approximate -------
CANARY_ROLES = ["teacher", *lesson.CANARY_METHODS]


def canary_images(bundle, ids: list[int]) -> None:
    """The canaries, each captioned with its true label and the label planted in its place."""
    true = bundle.train_y[bundle.rows(ids)].cpu().numpy()
    planted = planted_labels(lesson.CANARY_CONFIG.seed, np.asarray(ids), true, bundle.spec.n_classes)
    names = bundle.class_names
    for column, image, i, t, p in zip(st.columns(len(ids)), views.upscale(bundle.images(np.asarray(ids)), 64), ids,
                                      true, planted, strict=True):
        column.image(image, caption=f"#{i}: a {names[t]} labelled {names[p]}", output_format="PNG")


def canary_rates_before(exp, ids: list[int]) -> dict:
    """The canary rates of every constituent of a run that still holds its canaries (audit's shape)."""
    inputs, planted = exp.bundle.take(ids)
    return evidence.rates_table(exp.evaluate(inputs, planted)["constituents"])


def canary_request(exp) -> dict | None:
    """The canary run's finished request (it serves one: the canaries), if any."""
    latest = exp.latest_request() if exp is not None else None
    record = exp.ledger.record(latest) if latest else None
    return record if record and record["status"] == "done" else None


def canary_action(exp, plan, ids: list[int], record, work: LessonWork) -> None:
    """The step's one button: train the canary run, then forget its canaries."""
    if not lesson.trained(exp, *CANARY_ROLES):
        action("Train the canary run (teachers, PURGE and baseline students)", "train",
               work.train(lesson.CANARY_METHODS), None, canary_dir())
    else:
        action(f"Forget the {len(ids)} canaries", "forget", work.forget(ids),
               f"The canaries are forgotten (request {record['request_id']})." if record else None, canary_dir())
    job_progress(plan, CANARY_ROLES, canary_dir())


def step_leak(exp, plan, bundle, samples, work: LessonWork) -> dict | None:
    ids = samples["canaries"]
    st.markdown(
        f"A *canary* is a training image planted with a wrong label. This run plants {len(ids)} in Teacher 1's "
        "shard; the same images sit in Student 1's first chunk, which Teacher 1 labels alone. Does what "
        "Teacher 1 memorised reach its student?")
    canary_images(bundle, ids)
    record = canary_request(exp)
    canary_action(exp, plan, ids, record, work)
    if components.busy_reason(canary_dir()) or (record is None and not lesson.trained(exp, *CANARY_ROLES)):
        return None  # a job is rewriting the run (its progress is above), or nothing is trained yet
    if record is None and exp.latest_request():
        st.warning("The forget request did not finish. Start the lesson over (in the sidebar) to run it again.")
        return None
    report = exp.audit(top=0) if record else None
    table = report["canary"] if report else canary_rates_before(exp, ids)
    st.plotly_chart(evidence.canary_figure(evidence.canary_frame(table, plan)), key="learn_canary_rates")
    st.caption("Share of the canaries each constituent answers with the planted label. Student 1 learned "
               "Teacher 1's answers on these very images; Student 2 never learned from Teacher 1; a baseline "
               f"student's label mixes all {plan.n_teachers} teachers, which outvote the flipped one.")
    if report is None:
        st.caption(f"Next: forget the {len(ids)} canaries, then compare three ways of doing it.")
    elif not hidden_until_guessed(9, "the three ways to forget appear"):
        three_ways(report, plan, ids)
    return report


def three_ways(report: dict, plan, ids: list[int]) -> None:
    """Teacher only, PURGE, the baseline side by side: the canary rate each leaves and what it costs."""
    for column, way in zip(st.columns(3), evidence.ways(report, plan, retrain_scope(plan, ids)), strict=True):
        with column.container(border=True):
            st.markdown(f"**{way.name}**")
            st.metric(f"Canaries left on {way.where}", evidence.percent(way.left))
            st.metric("Sample-steps, teacher retraining included", f"{way.sample_steps:,}")
            st.caption(f"Retrains {way.retrains}.")


def step_contrast(exp, plan, bundle, samples, work: LessonWork) -> dict | None:
    st.markdown(
        "A common *approximate* way to forget fine-tunes the old weights on the retained data. Here it gets "
        "PURGE's compute on the same constituents. Then both are stressed: rounds of relearning on the retained "
        "data, and weights rounded to 8 and 4 bits. Each point is the median membership p of the canaries on "
        "Teacher 1 and Student 1: small means *looks like a member*.")
    record = canary_request(exp)
    action("Verify the canary request", "verify", work.verify,
           None if record else "Forget the canaries first (step 9).", where=canary_dir())
    job_progress(plan, CANARY_ROLES, canary_dir())
    if record is None or components.busy_reason(canary_dir()):
        return None
    verdict_box(record)
    report = exp.audit(top=0)
    if hidden_until_guessed(10, "the curves appear"):
        return report
    frame, before = evidence.contrast_frame(report["contrast"]), evidence.before_p(report)
    left, right = st.columns([3, 2])
    left.plotly_chart(evidence.relearning_figure(frame, before), key="learn_relearning")
    left.caption(evidence.relearning_sentence(frame))
    right.plotly_chart(evidence.quantisation_figure(frame, before), key="learn_quantisation")
    right.caption(evidence.quantisation_sentence(frame))
    if "reference" not in set(frame["series"]):
        st.caption("Verify the request to draw the from-scratch reference under PURGE's line.")
    return report


STEP_VIEWS = {1: step_hard, 2: step_sisa, 3: step_baseline, 4: step_mapping, 5: step_labels,
              6: step_teacher_side, 7: step_student_side, 8: step_exact, 9: step_leak, 10: step_contrast}
