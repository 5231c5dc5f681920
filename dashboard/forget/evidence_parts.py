"""What the Forget page draws of a request's evidence of forgetting (DESIGN section 14): each forgotten
sample with its membership p-values before, after and on the from-scratch reference, the canaries, and
exact against approximate unlearning. Drawn with st.* from `purge_engine.audit.report` output the page
hands over; the figures and sentences come from evidence_views, canary_views and shared/evidence.py.
"""

from __future__ import annotations

import streamlit as st

from dashboard.forget import canary_views
from dashboard.forget import evidence_views as ev
from dashboard.forget import views as forget_views
from dashboard.shared import evidence, state, views

CARDS_PER_ROW = 2
IMAGE_PX = 84  # a forgotten sample's picture beside its p-values
INTRO = ("For each forgotten sample, a membership test (offline LiRA) on every constituent that held it or learned "
         "from it. **p** is how likely a constituent that never saw the sample would be this confident on it: a "
         "tiny p (say 1e-9) says *this constituent trained on it*; an unseen sample gets anything from about 0.05 "
         "to 1. The references are the ensemble's own constituents that provably never saw the sample (where those "
         "are fewer than 3, with reference models trained for the audit on data without it).")


def evidence_panel(report: dict, bundle) -> None:
    """The request's evidence, first among its results (container state.EVIDENCE)."""
    with st.container(key=state.EVIDENCE):
        st.subheader("Evidence of forgetting")
        if report.get("note"):
            st.info(f"No evidence: {report['note']}.", icon=":material/info:")
            return
        st.markdown(INTRO)
        st.markdown(f"**{ev.verdict_line(report)}**")
        samples = ev.shown_samples(report)
        if len(samples) < len(report["samples"]):
            st.caption(f"The {len(samples)} of {len(report['samples'])} samples that looked most like members before "
                       "the request (smallest p on their teacher).")
        sample_cards(report, bundle, samples)
        st.caption(ev.CARDS_CAPTION)
        figure = ev.strip_figure(report, samples)
        if figure is not None:
            st.plotly_chart(figure, key="evidence_strip")
            st.caption(ev.STRIP_CAPTION)
        note = ev.no_reference_note(report)
        if note:
            st.info(note, icon=":material/school:")
        canary_panel(report)
        contrast_panel(report)


def sample_cards(report: dict, bundle, samples: list[int]) -> None:
    """Each sample's picture (or words) beside its p-values in words, CARDS_PER_ROW to a row."""
    if not samples:
        return
    pictures = views.upscale(bundle.images(samples), IMAGE_PX) if bundle.texts is None else \
        bundle.sample_texts(samples)
    labels = [bundle.class_names[int(y)] for y in bundle.take(samples)[1]]  # the label it trained with
    for start in range(0, len(samples), CARDS_PER_ROW):
        for column, i in zip(st.columns(CARDS_PER_ROW), range(start, min(start + CARDS_PER_ROW, len(samples))),
                             strict=False):
            with column.container(border=True, key=f"evidence_sample_{samples[i]}"):
                picture, words = st.columns([1, 6], vertical_alignment="center")
                if isinstance(pictures[i], str):
                    picture.markdown(f"*{pictures[i]}*")
                else:
                    picture.image(pictures[i], output_format="PNG")
                words.markdown(f"**Sample #{samples[i]}** · label {labels[i]}  \n"
                               + "  \n".join(ev.sample_lines(report, samples[i])))


def canary_panel(report: dict) -> None:
    """Canary rates per constituent, when the run plants canaries; the full picture when the request
    forgot some of them, else a line saying which they are."""
    if not report.get("canary"):
        return
    canaries = set(report.get("canary_ids", []))
    forgot = canaries & {int(i) for i in report["samples"]}
    st.markdown("**Canaries: what leaks through distillation, and what forgetting removes**")
    if not forgot:
        st.caption(f"This run plants {len(canaries)} canaries (flipped-label samples in Teacher 1's shard): ids "
                   f"{forget_views.id_list(sorted(canaries))}. Forget them to see the student carry them until it is "
                   "retrained.")
        return
    rates = evidence.exposed_canary_rates(report)
    if rates is not None:
        st.markdown(f"This request forgot {len(forgot)} of the {len(canaries)} canaries. The PURGE students exposed "
                    f"to them answered {evidence.rate_text(rates[0])} with the planted label before; with only the "
                    f"teacher forgotten they still would; after PURGE: {evidence.rate_text(rates[1])}.")
    figure = canary_views.canary_figure(report)
    if figure is not None:
        st.plotly_chart(figure, key="evidence_canaries")
        st.caption(ev.CANARY_CAPTION)
    cost = canary_views.canary_cost_text(report)
    if cost:
        st.caption(cost)


def contrast_panel(report: dict) -> None:
    """PURGE against approximate unlearning at the same compute, under relearning and quantisation."""
    figure = canary_views.contrast_figure(report)
    if figure is None:
        return
    st.markdown("**Exact against approximate: what a cheaper method would leave behind**")
    st.markdown(canary_views.contrast_summary(report))
    st.plotly_chart(figure, key="evidence_contrast")
    st.caption(ev.CONTRAST_CAPTION + " " + (canary_views.spent_text(report) or ""))
