"""benchmarks/quality_table.py: the claims rule, cell skipping and the rendering (no training, no TF work)."""
import json
import math

import pytest

from benchmarks import quality_table as qt

TRAIN_DEFAULTS = {"batch_size": 256, "epochs": 5, "learning_rate": 3e-4, "l2_embedding": 1e-6, "l2_dense": 1e-6,
                  "early_stopping_patience": 1, "seed": 2024, "warm_start": False}  # trainer.config.TrainConfig


def test_mean_and_standard_error():
    mean, se = qt.mean_se([0.70, 0.72, 0.74])
    assert mean == pytest.approx(0.72)
    assert se == pytest.approx(0.02 / math.sqrt(3))  # sample sd 0.02
    assert math.isnan(qt.mean_se([0.7])[1])
    assert math.isnan(qt.mean_se([])[0])


def test_claim_needs_twice_the_standard_error_and_the_minimum_difference():
    # differences .010, .012, .014: mean .012, sd .002, se .002/sqrt(3) = .00115 -> 2 se = .0023 < .012 > .002
    a = {1: 0.910, 2: 0.912, 3: 0.914}
    b = {1: 0.900, 2: 0.900, 3: 0.900}
    claim = qt.paired_claim("A", a, "B", b)
    assert claim.difference == pytest.approx(0.012)
    assert claim.standard_error == pytest.approx(0.002 / math.sqrt(3))
    assert claim.verdict == "A better" and claim.seeds == 3
    assert "A better" in claim.text() and "+0.0120 ± 0.0012" in claim.text()
    # the same ordering the other way round
    assert qt.paired_claim("B", b, "A", a).verdict == "B better"


def test_a_consistent_but_tiny_difference_is_not_claimed():
    # differences .0015 each seed: se 0 (< half the mean) but below the 0.002 AUC floor
    a = {1: 0.9015, 2: 0.9115, 3: 0.8915}
    b = {1: 0.9000, 2: 0.9100, 3: 0.8900}
    claim = qt.paired_claim("A", a, "B", b)
    assert claim.difference == pytest.approx(0.0015)
    assert claim.verdict == "no difference shown"


def test_a_noisy_difference_is_not_claimed():
    # differences +.03, -.01, +.01: mean .01, sd .02, se .01155 -> 2 se = .0231 > .01
    a = {1: 0.93, 2: 0.89, 3: 0.91}
    b = {1: 0.90, 2: 0.90, 3: 0.90}
    claim = qt.paired_claim("A", a, "B", b)
    assert claim.difference == pytest.approx(0.01)
    assert claim.standard_error == pytest.approx(0.02 / math.sqrt(3))
    assert claim.verdict == "no difference shown"


def test_only_common_seeds_pair_and_one_pair_claims_nothing():
    a = {1: 0.95, 2: 0.96}
    b = {2: 0.90, 3: 0.91}
    claim = qt.paired_claim("A", a, "B", b)
    assert claim.seeds == 1 and claim.difference == pytest.approx(0.06)
    assert claim.verdict == "no difference shown" and math.isnan(claim.standard_error)


def test_a_deterministic_row_pairs_with_every_seed():
    gbdt = {None: 0.950}
    fused = {1: 0.960, 2: 0.962, 3: 0.958}  # differences .010, .012, .008: se .00115
    claim = qt.paired_claim("fused", fused, "GBDT", gbdt)
    assert claim.seeds == 3 and claim.difference == pytest.approx(0.010)
    assert claim.verdict == "A better"


def _row(key="deepfm"):
    return qt.ROWS_BY_KEY[key]


def test_finished_cells_are_skipped_and_failures_recorded(tmp_path):
    cells = [qt.Cell("frappe", _row("deepfm"), 2024), qt.Cell("frappe", _row("deepfm"), 2025),
             qt.Cell("frappe", _row("fm"), 2024), qt.Cell("frappe", _row("gbdt"), None)]
    calls = []

    def train(cell):
        calls.append(cell)
        if cell.row.key == "fm":
            raise RuntimeError("boom")
        if cell.row.key == "gbdt":
            raise NotImplementedError("no GBDT on TFRecords yet")
        return {"kind": "keras", "test_auc": 0.9, "test_logloss": 0.3, "best_epoch": 2}

    counts = qt.run_cells(cells, str(tmp_path), train, log=lambda message: None)
    assert counts == {"skipped": 0, "done": 2, "failed": 1, "not_implemented": 1, "busy": 0}
    written = json.loads(open(cells[0].path(str(tmp_path))).read())
    assert written["seed"] == 2024 and written["row"] == "deepfm" and written["test_auc"] == 0.9
    assert open(cells[2].path(str(tmp_path))[:-5] + ".error.txt").read().endswith("RuntimeError: boom\n")
    assert cells[3].path(str(tmp_path)).endswith("gbdt/once.json")

    calls.clear()
    counts = qt.run_cells(cells, str(tmp_path), train, log=lambda message: None)
    assert counts["skipped"] == 2 and [c.row.key for c in calls] == ["fm", "gbdt"]  # only the unfinished ones


def test_plan_leaves_out_derived_rows_and_rows_of_other_datasets():
    rows = [qt.ROWS_BY_KEY[k] for k in ("resfusion", "resfusion-k1", "optfusion-soft-reference")]
    names = [c.name() for c in qt.plan(["criteo", "avazu"], rows, seeds=[1])]
    assert names == ["criteo/resfusion/seed 1", "avazu/resfusion/seed 1", "avazu/optfusion-soft-reference/seed 1"]


def test_plan_orders_datasets_then_seeds_with_deterministic_rows_once():
    rows = [_row("gbdt"), _row("deepfm"), _row("optfusion-hard"), _row("raw-deepfm")]
    cells = qt.plan(["frappe", "criteo"], rows)
    names = [c.name() for c in cells]
    assert names[0] == "frappe/gbdt"
    assert names[1:3] == ["frappe/deepfm/seed 2024", "frappe/optfusion-hard/seed 2024"]
    assert sum(n.startswith("frappe/deepfm/") for n in names) == 5
    assert sum(n.startswith("criteo/deepfm/") for n in names) == 3
    assert names[-1] == "criteo/raw-deepfm/seed 2024"  # raw rows after every TFRecord cell, one seed
    assert all(not n.startswith(("frappe/raw", "criteo/raw")) for n in names[:-2])


def test_render_marks_missing_cells_and_evaluates_targets(tmp_path):
    work = str(tmp_path)

    def put(dataset, key, seed, auc, epoch=2, **extra):
        cell = qt.Cell(dataset, qt.ROWS_BY_KEY[key], seed)
        qt.write_json(cell.path(work), {"row": key, "seed": seed, "kind": cell.row.kind, "test_auc": auc,
                                        "test_logloss": 0.3, "best_epoch": epoch, "cell_seconds": 60.0, **extra})

    for seed, (supernet, hard, deepfm, fused) in zip((2024, 2025, 2026), [(0.930, 0.935, 0.920, 0.970),
                                                                          (0.931, 0.936, 0.921, 0.971),
                                                                          (0.929, 0.934, 0.922, 0.972)]):
        put("frappe", "optfusion-supernet", seed, supernet)
        put("frappe", "optfusion-hard", seed, hard)
        put("frappe", "deepfm", seed, deepfm, epoch=3)
        put("frappe", "resfusion", seed, fused + 0.001, epoch=1, by_rounds={
            "1": {"test_auc": fused, "test_logloss": 0.25, "best_epoch": 1},
            "2": {"test_auc": fused + 0.001, "test_logloss": 0.24, "best_epoch": 1}})
    put("frappe", "gbdt", None, 0.960, epoch=None, kind="gbdt", trees=120)
    text = qt.render(work, ["frappe", "criteo"], "python -m benchmarks.quality_table")
    assert text.startswith(qt.SECTION_HEADING)
    assert "| OptFusion-Hard | 3/5 | 0.9350 ± 0.0006 |" in text
    assert "| DCN | 0/5 | missing | missing |" in text
    assert "| TF-DF GBDT | once | 0.9600 |" in text and "120 trees" in text
    assert "- PASS: Frappe OptFusion search (supernet) test AUC 0.9300" in text
    assert "- PASS: Frappe OptFusion-Hard at least as good as the best baseline (DeepFM" in text
    assert "| GBDTRes+DeepFM (K=1) | 3/5 | 0.9710 ± 0.0006 | 0.2500 ± 0.0000 | 1.0 ± 0.0 |" in text  # the K = 3 fit
    assert "| GBDTRes+DeepFM (K=3) | 0/5 | missing |" in text
    assert "| OptFusion-Soft (retrain.sh's rate) | – | not run" in text.split("### criteo")[1]
    assert "- PASS: Frappe GBDTRes+DeepFM (K=1) beats both" in text
    assert "- PASS: Frappe GBDTRes+DeepFM (K=1) reaches its best in fewer epochs than DeepFM alone: 1.0 vs 3.0" in text
    assert "- PASS: Frappe TF-DF GBDT within 0.01 AUC" in text
    assert "- missing: Criteo OptFusion-Hard not below the supernet" in text
    assert "### criteo" in text


def test_a_cell_locked_by_a_live_process_is_left_to_it(tmp_path):
    import os
    cell = qt.Cell("frappe", _row("deepfm"), 2024)
    lock = cell.path(str(tmp_path))[:-5] + ".lock"
    os.makedirs(os.path.dirname(lock))
    with open(lock, "w") as f:
        f.write(str(os.getppid()))  # a live process other than this one
    counts = qt.run_cells([cell], str(tmp_path), lambda c: {"test_auc": 0.9}, log=lambda message: None)
    assert counts["busy"] == 1 and not os.path.exists(cell.path(str(tmp_path)))
    with open(lock, "w") as f:
        f.write("999999999")  # no such process: the lock is stale and taken over
    counts = qt.run_cells([cell], str(tmp_path), lambda c: {"test_auc": 0.9}, log=lambda message: None)
    assert counts["done"] == 1 and not os.path.exists(lock)


def test_produce_once_reads_produces_or_waits_for_the_lock_holder(tmp_path):
    import os
    import threading
    path = str(tmp_path / "prep-transform.json")
    calls = []
    produce = lambda: (calls.append(1), qt.write_json(path, {"made": len(calls)}))  # noqa: E731
    assert qt.produce_once(path, produce, print, "waiting") == {"made": 1}
    assert qt.produce_once(path, produce, print, "waiting") == {"made": 1} and calls == [1]  # read, not produced
    assert not os.path.exists(str(tmp_path / "prep-transform.lock"))
    # another live process holds the lock: wait (logged) until its file appears, never produce here
    other = str(tmp_path / "seed-1.json")
    with open(str(tmp_path / "seed-1.lock"), "w") as f:
        f.write(str(os.getppid()))
    logged = []
    threading.Timer(0.3, lambda: qt.write_json(other, {"made": "elsewhere"})).start()
    assert qt.produce_once(other, produce, logged.append, "waiting for seed 1", poll_seconds=0.1) == {
        "made": "elsewhere"}
    assert calls == [1] and "waiting for seed 1" in logged


def test_produce_once_names_the_file_a_failed_producer_did_not_write(tmp_path):
    path = str(tmp_path / "seed-2.json")
    with pytest.raises(RuntimeError, match=r"seed-2\.json was not written; see the \.error\.txt beside it"):
        qt.produce_once(path, lambda: None, print, "waiting")


def test_a_not_worse_target_needs_two_paired_seeds_to_pass():
    one = qt.paired_claim("Hard", {1: 0.70}, "Supernet", {1: 0.74})
    assert qt.not_worse_status(one) == "not shown"  # -0.04 on one seed: no claim possible either way
    two = qt.paired_claim("Hard", {1: 0.70, 2: 0.75}, "Supernet", {1: 0.74, 2: 0.72})
    assert two.verdict == "no difference shown" and qt.not_worse_status(two) == "PASS"
    worse = qt.paired_claim("Hard", {1: 0.70, 2: 0.71, 3: 0.72}, "Supernet", {1: 0.74, 2: 0.75, 3: 0.76})
    assert qt.not_worse_status(worse) == "FAIL"


def test_a_gbdt_field_added_after_a_cell_ran_takes_its_default_and_recorded_values_are_kept():
    recorded = {"GbdtResidual": {"folds": 5, "gbdt_params": json.dumps({"num_trees": 300, "shrinkage": 0.05})}}
    params = json.loads(qt.with_current_defaults(recorded)["GbdtResidual"]["gbdt_params"])
    assert params["use_hessian_gain"] is False and params["max_depth"] == 6  # GbdtParams' defaults
    assert (params["num_trees"], params["shrinkage"]) == (300, 0.05)  # what the cell ran with
    assert qt.with_current_defaults({"Trainer": {"x": 1}}) == {"Trainer": {"x": 1}}


def test_a_resfusion_trainer_cell_from_before_a_gbdt_field_existed_is_not_stale_for_its_lack():
    """The ResFusion Trainer records its fits' settings in custom_config (resfusion.gbdt, resfusion.optfusion.search),
    not only in GbdtResidual and OptFusionSearch; training_fraction (default 1.0: every row) and embedding_update
    (default "dense") were added, with the earlier behaviour as their defaults, after the cells ran."""
    def trainer(gbdt: dict, run: dict) -> dict:
        return {"Trainer": {"custom_config": json.dumps(
            {"resfusion": {"folds": 5, "gbdt": gbdt, "optfusion": {"search": {"embedding_dim": 10, "run": run}}}})}}

    def digest(settings: dict) -> str:
        return qt.settings_digest(qt.comparable(qt.with_current_defaults(settings)))

    recorded = trainer({"num_trees": 300}, {"seed": 7})
    assert digest(recorded) == digest(trainer({"num_trees": 300, "training_fraction": 1.0},
                                              {"seed": 7, "embedding_update": "dense"}))
    assert digest(recorded) != digest(trainer({"num_trees": 300, "training_fraction": 0.1}, {"seed": 7}))
    assert digest(recorded) != digest(trainer({"num_trees": 300}, {"seed": 7, "embedding_update": "lazy"}))


def test_where_the_run_fn_lives_is_not_a_setting():
    before = {"Trainer": {"run_fn": "trainer.residual.run_fn", "custom_config": "{}"}}
    after = {"Trainer": {"run_fn": "trainer.resfusion.run.run_fn", "custom_config": "{}"}}
    assert qt.comparable(before) == qt.comparable(after) == {"Trainer": {"custom_config": "{}"}}
    assert qt.comparable({"Trainer": {"custom_config": "{\"a\": 1}"}}) != qt.comparable(after)


def test_a_cell_trained_before_warm_start_existed_is_not_stale_for_its_lack():
    recorded = {"Trainer": {"custom_config": json.dumps({"model": {"name": "deepfm"}, "train": {"seed": 7}})}}
    current = {"Trainer": {"custom_config": json.dumps({"dataset": "criteo", "model": {"name": "deepfm"},
                                                        "train": {**TRAIN_DEFAULTS, "seed": 7}})}}
    assert qt.comparable(qt.with_current_defaults(recorded)) == qt.comparable(current)
    warm = {"Trainer": {"custom_config": json.dumps({"model": {"name": "deepfm"},
                                                     "train": {**TRAIN_DEFAULTS, "seed": 7, "warm_start": True}})}}
    assert qt.comparable(qt.with_current_defaults(recorded)) != qt.comparable(warm)


def test_readme_results_table_is_the_summary_of_cells_and_keeps_the_text_around_it(tmp_path):
    """Hand-made cells: the mean ± standard error over seeds (0.935, 0.936, 0.934: 0.9350 ± 0.0006), a deterministic
    row once, missing rows; the README outside the markers is left as it is."""
    work = str(tmp_path / "cells")
    for seed, auc in zip((2024, 2025, 2026), (0.935, 0.936, 0.934)):
        qt.write_json(qt.Cell("frappe", qt.ROWS_BY_KEY["optfusion-hard"], seed).path(work),
                      {"row": "optfusion-hard", "seed": seed, "kind": "retrain", "test_auc": auc})
    qt.write_json(qt.Cell("frappe", qt.ROWS_BY_KEY["gbdt"], None).path(work),
                  {"row": "gbdt", "seed": None, "kind": "gbdt", "test_auc": 0.93})
    lines = qt.summary_lines(work, ["frappe", "criteo"])
    assert lines[0] == "| model (test AUC) | frappe | criteo |"
    assert "| OptFusion-Hard | 0.9350 ± 0.0006 (n=3) | missing |" in lines
    assert "| TF-DF GBDT | 0.9300 (n=1) | missing |" in lines
    assert "| DeepFM | missing | missing |" in lines
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{qt.SUMMARY_BEGIN}\nold table\n{qt.SUMMARY_END}\nafter\n")
    qt.write_readme_summary(str(readme), lines)
    assert readme.read_text() == f"before\n{qt.SUMMARY_BEGIN}\n" + "\n".join(lines) + f"\n{qt.SUMMARY_END}\nafter\n"
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="has no"):
        qt.write_readme_summary(str(readme), lines)


def test_the_readme_shows_the_committed_cells():
    """README.md's results table is what `python -m benchmarks.quality_table --render` writes from the cells
    committed under benchmarks/results/quality_table."""
    import os
    with open(qt.README) as f:
        text = f.read()
    block = text[text.index(qt.SUMMARY_BEGIN) + len(qt.SUMMARY_BEGIN):text.index(qt.SUMMARY_END)]
    committed = os.path.join(qt.REPO_ROOT, "benchmarks", "results", "quality_table")
    assert block.strip("\n").splitlines() == qt.summary_lines(committed)


def test_an_optfusion_cell_from_before_the_embedding_update_option_is_not_stale():
    run = {"batch_size": 256, "early_stopping_patience": 1, "epochs": 5, "jit_compile": False, "l2_mode": "dense",
           "max_steps_per_epoch": None, "precision": "float32", "seed": 7, "steps_per_execution": 16}
    recorded = {"OptFusionSearch": {"settings": json.dumps({"embedding_dim": 40, "run": run})}}
    current = {"OptFusionSearch": {"settings": json.dumps({"embedding_dim": 40,
                                                           "run": {**run, "embedding_update": "dense"}})}}
    assert qt.settings_digest(qt.with_current_defaults(recorded)) == qt.settings_digest(
        qt.with_current_defaults(current))
    lazy = {"OptFusionSearch": {"settings": json.dumps({"embedding_dim": 40,
                                                        "run": {**run, "embedding_update": "lazy"}})}}
    assert qt.settings_digest(qt.with_current_defaults(recorded)) != qt.settings_digest(lazy)


def test_the_lazy_rows_train_with_the_lazy_update_and_the_hard_one_retrains_the_lazy_search(tmp_path):
    runner = qt.Runner(str(tmp_path))
    for key, node_name in (("optfusion-supernet-lazy", "OptFusionSearch"), ("optfusion-hard-lazy", "OptFusionRetrain")):
        row = qt.ROWS_BY_KEY[key]
        settings = qt.node_settings(runner.nodes(runner.config("frappe", row, 2024)), row.kind)
        assert json.loads(settings[node_name]["settings"])["run"]["embedding_update"] == "lazy"
    assert qt.ROWS_BY_KEY["optfusion-hard-lazy"].source == "optfusion-supernet-lazy"
    assert qt.ROWS_BY_KEY["optfusion-hard"].source == ""  # the dense search, "optfusion-supernet"


def test_a_raw_resfusion_cell_says_which_k_it_served_and_why():
    """The Trainer's history.json of a ResFusion fit -> the cell's served K and each prefix's eval figures -> a line
    under the raw table; a comparator (no served K) records nothing."""
    history = {"served_rounds": 0, "stages": [
        {"index": 0, "rounds": 0, "kind": "gbdt", "eval_auc": 0.7307, "eval_logloss": 0.4822},
        {"index": 1, "rounds": 1, "kind": "nn", "eval_auc": 0.7611, "eval_logloss": 0.4994}]}
    selection = qt.served_selection(history)
    assert selection == {"served_rounds": 0, "eval_by_rounds": [
        {"rounds": 0, "eval_auc": 0.7307, "eval_logloss": 0.4822},
        {"rounds": 1, "eval_auc": 0.7611, "eval_logloss": 0.4994}]}
    assert qt.served_selection({"served_rounds": None, "stages": []}) == {}
    row = qt.ROWS_BY_KEY["raw-resfusion"]
    lines = qt.served_selection_lines({row.key: {2024: {"test_auc": 0.63, **selection}}}, [row])
    assert lines == [f"- {row.label}, seed 2024: served K = 0, the lowest eval logloss (eval AUC / logloss: "
                     "K = 0: 0.7307 / 0.4822; K = 1: 0.7611 / 0.4994)."]
    assert qt.served_selection_lines({row.key: {2024: {"test_auc": 0.7}}}, [row]) == []
