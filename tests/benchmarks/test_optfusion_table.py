"""benchmarks/optfusion_table.py: entries, claims and the document section (no pipeline runs)."""
from benchmarks import optfusion_table as bench
from pipeline import model_steps
from trainer.models import registry


def _runs(*aucs: float) -> list[dict[str, float]]:
    return [{"auc": a, "logloss": 0.5, "epochs": 1.0, "seconds": 10.0} for a in aucs]


def test_hard_is_compared_with_the_best_baseline_and_with_its_supernet():
    by_label = {
        "DeepFM": _runs(0.70, 0.71, 0.72),  # mean .710
        "DCN": _runs(0.72, 0.73, 0.71),  # mean .720: the best baseline
        "OptFusion-Hard": _runs(0.73, 0.74, 0.72),
        bench.SUPERNET_LABEL: _runs(0.74, 0.70, 0.75),
    }
    lines = bench.claims(by_label)
    # Hard - DCN = (.01, .01, .01): mean .01, standard error 0 -> better.
    assert lines[0] == "- OptFusion-Hard vs the best baseline (DCN): test AUC +0.0100 ± 0.0000 (better)"
    # Hard - supernet = (-.01, .04, -.03): mean 0, standard error sqrt(0.0013/3) = .0208 -> no claim.
    assert lines[1] == "- OptFusion-Hard vs its supernet: test AUC +0.0000 ± 0.0208 (no difference claimed)"


def test_one_seed_makes_no_claim_and_the_table_has_both_stages():
    results = {"frappe": {"DNN": _runs(0.90), "OptFusion-Hard": _runs(0.93), bench.SUPERNET_LABEL: _runs(0.92),
                          "OptFusion-Soft": []}}
    text = bench.render(results, [2022], "small")
    assert text.startswith(bench.SECTION_HEADING)
    assert "| OptFusion-Hard | 0.9300 | 0.5000 | 1.0 | 10 |" in text
    assert f"| {bench.SUPERNET_LABEL} | 0.9200 |" in text
    assert "OptFusion-Soft" not in text.split("### frappe")[1].split("- OptFusion-Hard")[0]  # no empty row
    assert "(one seed: no claim)" in text


def test_every_entry_names_a_model_of_the_project():
    known = set(model_steps.FAMILY_MODULES) | set(registry.LOGIT_BUILDERS)
    assert {e.flags[1] for e in bench.ENTRIES} <= known
    assert set(bench.BASELINES) < {e.label for e in bench.ENTRIES}
