"""The evidence of forgetting on the pages, through AppTest: the Forget page's results open with each
forgotten sample's p-values; the gallery can put the most memorised samples first; Compare shows each
request's evidence beside its cost."""

from purge_engine.audit import memorisation
from purge_engine.experiment import Experiment
from tests.dashboard.conftest import RUN_NAME, app_on, run_until


def evidence_text(at) -> str:
    return "\n".join(m.value for m in at.get_by_key("evidence").markdown)


def picks(at) -> list[int]:
    """Gallery sample ids in the order drawn."""
    return [int(box.key[5:]) for box in at.checkbox if box.key.startswith("pick_")]


def test_results_open_with_the_evidence_and_the_loss_attack_is_collapsed_below(runs_dir):
    at = app_on("forget")
    assert not at.exception
    headings = [h.value for h in at.subheader]
    assert headings.index("Evidence of forgetting") < headings.index("Cost and accuracy")  # first, under the header
    forgotten = Experiment.open(runs_dir / RUN_NAME).ledger.record(2)["sample_ids"]
    text = evidence_text(at)
    assert f"Sample #{forgotten[0]}" in text and " → **" in text  # its p before → after, in words
    assert "reference: verify to compute" in text  # not verified yet
    assert at.get_by_key("evidence_strip")
    expander = next(e for e in at.expander if e.label.startswith("Population-level illustration"))
    assert not expander.proto.expanded and expander.get("dataframe")  # the old table, collapsed


def test_most_memorised_first_then_forget_it_and_read_its_evidence(runs_dir):
    ranking = memorisation(Experiment.open(runs_dir / RUN_NAME))["sample_id"]
    at = app_on("forget")
    assert picks(at)[0] == 0  # the default: id order
    at.number_input(key="forget_page").set_value(2).run()
    at.radio(key="gallery_order").set_value("memorised").run()
    assert not at.exception
    assert at.number_input(key="forget_page").value == 1  # a new order starts on its first page
    assert picks(at) == [int(i) for i in ranking[:len(picks(at))]]
    top = int(ranking[0])
    assert " · p " in at.checkbox(key=f"pick_{top}").label  # captioned with its p on its teacher
    at.checkbox(key=f"pick_{top}").check().run()
    at.button(key="forget").click().run()
    run_until(at, lambda at: any(h.value.startswith("Request 3: results") for h in at.header))
    text = evidence_text(at)
    assert f"Sample #{top}" in text and "Teacher " in text and " → **" in text
    assert picks(at)[0] != top  # forgotten: the ranking leaves it out now
    at.button(key="verify").click().run()
    run_until(at, lambda at: any("Exact" in s.value for s in at.success))
    text = evidence_text(at)
    assert "✓" in text and "After equals the from-scratch reference on every one" in text
    assert at.get_by_key("evidence_contrast")  # exact against approximate, with the reference's series


def test_compare_shows_each_requests_evidence_beside_its_cost(runs_dir):
    at = app_on("compare")
    assert not at.exception
    frame = next(df.value for df in at.dataframe if "p after (median)" in df.value.columns)
    assert list(frame["Request"]) == [1, 2] and frame["Cost (sample-steps)"].notna().all()
    assert frame.loc[0, "p after (median)"] not in ("—", "")  # request 1 was teacher-side
    assert set(frame["p reference (median)"]) == {"not verified"}
    assert "Canaries" not in frame.columns  # the tiny run plants none
