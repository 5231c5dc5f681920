"""What the command line prints for people: one printer per command's report (its --json is the same
dict), and the progress bar of a job. The CLI imports this; nothing else does."""

from __future__ import annotations

import sys

from tqdm import tqdm

from purge_engine.datasets.sources import DATASETS
from purge_engine.events import Event, StepEvent, TotalEvent
from purge_engine.progress import Progress
from purge_engine.vocabulary import constituent_label, title


class ProgressBar:
    """A job's progress as a tqdm bar on stderr, folded by progress.Progress as the dashboard's grid is:
    the total comes from the job's first event (events.TotalEvent), a reused step counts only where the
    total is the whole training, and the time left is measured on the steps this job trained itself. A
    full retrain after a forget request announces its own total: it gets a bar of its own."""

    def __init__(self, stream=sys.stderr):
        self.progress, self.stream, self.bar = Progress(), stream, None

    def __call__(self, event: Event) -> None:
        self.progress.fold(event)
        if isinstance(event, TotalEvent):
            self.close()
            self.bar = tqdm(total=event.sample_steps, file=self.stream, unit=" sample-steps", dynamic_ncols=True,
                            desc=event.what, bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt}"
                                                        "{unit} [{elapsed}{postfix}]")
        elif self.bar is not None and isinstance(event, StepEvent) and event.kind in ("reused", "trained"):
            progress = self.progress.active  # the request's fold, or the full retrain's after it
            self.bar.n = progress.sample_steps
            left = progress.seconds_left(self.bar.format_dict["elapsed"])
            where = f"{constituent_label(event.role, event.constituent)} step {event.step + 1}/{event.n_steps}"
            self.bar.set_postfix_str(where + ("" if left is None else f", ~{left:.0f} s left"))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


def print_plan(report: dict) -> None:
    print(f"dataset {report['config']['dataset']}: {report['n_pool']} train samples; "
          f"{report['teacher_samples']} teacher samples, {report['student_samples']} student samples")
    print(f"{report['n_teachers']} teachers x {report['teacher_slices']} slices; "
          f"{report['n_students']} students, {report['student_slices']} slices per chunk")
    for teacher in report["teachers"]:
        print(f"  Teacher {teacher['teacher_id'] + 1}: slices {teacher['slice_sizes']}, "
              f"epochs per step {teacher['epochs']} ({teacher['passes']:.1f} passes over the shard)")
    for student in report["students"]:
        teachers = ", ".join(str(t + 1) for t in student["teacher_ids"])
        print(f"  Student {student['student_id'] + 1} <- Teachers {teachers}; epochs per step {student['epochs']} "
              f"({student['passes']:.1f} passes over the shard)")
        for chunk in student["chunks"]:
            labels = ("Teachers " + "+".join(str(t + 1) for t in chunk["label_teachers"]) if chunk["label_teachers"]
                      else "no teacher (uniform)")
            print(f"    chunk {chunk['chunk_id'] + 1}: labelled by {labels}, slices {chunk['slice_sizes']}")
    for warning in report["warnings"]:
        print(f"warning: {warning}")
    _print_cost("training cost (sample-steps)", report["training_cost"], "ensemble")
    if "scope" in report:
        scope = report["scope"]
        teachers = ", ".join(f"Teacher {int(i) + 1} from step {s + 1}" for i, s in scope["teachers"].items()) or "none"
        print(f"forget {scope['sample_ids']}: retrain {teachers}")
        for method, steps in scope["students"].items():
            shown = ", ".join(f"Student {int(k) + 1} from step {s + 1}" for k, s in steps.items()) or "none"
            print(f"  {title(method)}: {shown}")
        _print_cost("predicted cost of the request (sample-steps)", report["predicted"])
        print_advantage(report["advantage"])


def print_advantage(adv: dict) -> None:
    """The headline: baseline student ÷ PURGE students, and why (advantage.py)."""
    for key in ("predicted", "measured"):
        if adv.get(key) is not None:
            print(f"PURGE's advantage ({key}): the baseline student retrains {adv[key]:.2f}x the sample-steps "
                  "PURGE's students do (teacher retraining is the same for both)")
    if adv.get("why"):
        print(adv["why"])


def _print_cost(heading: str, cost: dict, form: str = "retraining") -> None:
    print(heading + ":")
    for key, value in cost.items():
        print(f"  {title(key, form):<30} {value['sample_steps']:>12,} sample-steps  "
              f"{value['label_forwards']:>10,} label passes")


def print_theory(report: dict) -> None:
    print(f"{'N_t':>4} {'N_s':>4} {'r':>3} {'c':>6} {'teacher-side':>13} {'student-side':>13}")
    for row in report.get("rows", [report]):
        print(f"{row['n_teachers']:>4} {row['n_students']:>4} {row['student_slices']:>3} "
              f"{row['teachers_per_student']:>6.2f} {row['teacher_side_speedup']:>12.2f}x "
              f"{row['student_side_speedup']:>12.2f}x")


def print_accuracy(report: dict) -> None:
    if "cost" in report:
        for role, cost in report["cost"].items():
            print(f"{title(role):<26} trained {cost['sample_steps']:>10,} sample-steps in {cost['seconds']:7.2f} s")
    print(f"test accuracy on {report['samples']} samples ({report['run']}):")
    for role, value in report["accuracy"].items():
        singles = ", ".join(_number(a) for a in report["constituents"][role])
        print(f"  {title(role):<26} {_number(value, '.4f')}   constituents: {singles}")


def print_forget(report: dict) -> None:
    print(f"forget request {report['request_id']}: samples {report['sample_ids']}"
          + (" (finished after a crash)" if report.get("resumed") else ""))
    for role, steps in report["retrained"].items():
        shown = ", ".join(f"{int(c) + 1} from step {s + 1}" for c, s in steps.items())
        print(f"  {title(role, 'short'):<26} retrained {shown}; untouched {[c + 1 for c in report['reused'][role]]}")
    print(f"{'':<30} {'sample-steps':>12} {'predicted':>10} {'label passes':>13} {'seconds':>8}")
    for role, cost in report["cost"].items():
        print(f"{title(role, 'retraining'):<30} {cost['sample_steps']:>12,} "
              f"{report['predicted'][role]['sample_steps']:>10,} {cost['label_forwards']:>13,} {cost['seconds']:>8.2f}")
    if report.get("full_retrain"):
        full = report["full_retrain"]
        print(f"{title('full_retrain'):<30} {full['sample_steps']:>12,} "
              f"{report['predicted']['full_retrain']['sample_steps']:>10,} {full['label_forwards']:>13,} "
              f"{full['seconds']:>8.2f}  identical to the unlearned run: {full['identical_to_unlearned']}")
    print("test accuracy before -> after:")
    for role, before in report["accuracy"]["before"].items():
        after = report["accuracy"]["after"][role]
        print(f"  {title(role):<26} {_number(before['test'], '.4f')} -> {_number(after['test'], '.4f')}")
    print_advantage(report.get("advantage") or {})
    print_membership(report["membership"])
    if report.get("verification"):
        v = report["verification"]
        print(f"verification: exact={v['exact']} ({v['parameters_compared']:,} parameters of "
              f"{v['constituents_compared']} constituents, max |diff| {v['max_abs_diff']}): {v['reason']}")
        print(f"  reference: {v['reference']}")
        print(f"  forgotten absent: {v['forgotten_absent']}; work equals prediction: {v['cost_matches_prediction']}")


def print_membership(membership: dict) -> None:
    """AUC [95 % interval] and the forgotten samples' mean loss percentile among test losses, before -> after."""
    if not membership.get("before"):
        return  # a request served with score=False
    print("membership check (an illustrative loss-threshold attack, not a proof of forgetting; AUC 0.5 = chance):")
    for role, before in membership["before"].items():
        after = membership["after"].get(role, {})
        percentiles = [_number(check.get("forgotten_percentile"), ".0f") for check in (before, after)]
        print(f"  {title(role):<26} AUC {_auc_text(before)} -> {_auc_text(after)}; forgotten at percentile "
              f"{percentiles[0]} -> {percentiles[1]} of test losses")


def _auc_text(check: dict) -> str:
    return f"{_number(check.get('auc'))} [{_number(check.get('auc_low'))}, {_number(check.get('auc_high'))}]"


def _number(value, spec: str = ".3f") -> str:
    return "–" if value is None else format(value, spec)


def print_verify(report: dict) -> None:
    print(f"exact={report['exact']}: {report['reason']}")
    print(f"  reference: {report['reference']}")
    print(f"  forgotten samples absent from every slice and file: {report['forgotten_absent']}; "
          f"measured work equals predicted: {report['cost_matches_prediction']}")
    for row in report["details"]:
        print(f"  {constituent_label(row['role'], row['constituent'])}: equal={row['equal']} "
              f"max |diff| {row['max_abs_diff']} hash {row['hash']} vs {row['reference_hash']}")


def _p(value) -> str:
    return "-" if value is None else f"{value:.2g}"


def print_audit(report: dict) -> None:
    print(f"request {report['request_id']}: {len(report['samples'])} sample(s) {report['samples']}")
    if report.get("note"):
        print(f"  {report['note']}")
    print("  membership p-values (small: looks like a member; references: constituents that never saw it)")
    for row in report["membership"]:
        print(f"    sample {row['sample_id']:>5} {constituent_label(row['role'], row['constituent']):<32} "
              f"refs {row['references']:>2}  before {_p(row['p_before']):>8}  after {_p(row['p_after']):>8}  "
              f"reference {_p(row['p_reference']):>8}")
    for role, rates in report["canary"].items():
        shown = ", ".join(f"{c}: {_p(r['before'])}->{_p(r['after'])}" for c, r in rates.items())
        print(f"  canary rate, {title(role)}: {shown}")
    if report["contrast"]:
        print(f"  contrast: {report['contrast']['method']}, budget {report['contrast']['budget_sample_steps']}")
    if report["most_memorised"]:
        print("  most memorised now: " + ", ".join(str(r["sample_id"]) for r in report["most_memorised"]))


def print_ledger(report: dict) -> None:
    print(f"{report['run']}: hash chain {'valid' if report['chain_valid'] else 'BROKEN'} ({report['chain_detail']})")
    for row in report["requests"]:
        purge = row["cost"].get("purge", {}).get("sample_steps", "-")
        print(f"  #{row['request_id']} {row['time']} {row['status']:<8} samples {row['sample_ids']} "
              f"purge sample-steps {purge} verified {row['verified']}")


def print_check(report: dict) -> None:
    print(f"{report['run']}: {len(report['damaged'])} damaged" + (":" if report["damaged"] else ""))
    for row in report["damaged"]:
        print(f"  {row['path']}: {row['problem']}")
    for row in report["repaired"]:
        hashes = (f" (parameter hash {row['param_hash']}, recorded {row['recorded_hash']})"
                  if "param_hash" in row else "")
        print(f"  repaired {row['path']}: {row['action']}{hashes}: {'proved' if row['proved'] else 'NOT proved'}")
    for row in report["unrepairable"]:
        print(f"  cannot repair {row['path']}: {row['problem']}")
    for note in report["notes"]:
        print(f"  note: {note}")
    if report["repaired"]:
        print(f"every rebuilt file equals its recorded hash: {report['proved']}")
    print("the run is whole" if report["run_whole"] else
          "the run is damaged" + ("" if report["repaired"] else
                                  f"; `python -m purge_engine check --run {report['run']} --repair` rebuilds it"))


def print_datasets(report: dict) -> None:
    print(f"{'dataset':<21} {'here':<4} {'train':>7} {'test':>7} {'input':<18} {'classes':>7}  "
          f"{'teacher / student model':<24} licence")
    for row in report["datasets"]:
        spec = DATASETS[row["name"]]
        models = row["teacher_model"] if row["teacher_model"] == row["student_model"] else \
            f"{row['teacher_model']} / {row['student_model']}"
        print(f"{row['name']:<21} {'yes' if row['available'] else 'no':<4} {row['n_train']:>7,} {row['n_test']:>7,} "
              f"{spec.shape_text:<18} {row['n_classes']:>7}  {models:<24} {row['licence']}")
    for row in report["datasets"]:
        where = f"found at {row['found_at']}" if row["available"] else row["how_to_get"]
        print(f"  {row['name']}: from {' or '.join(row['sources'])}; {where}")
