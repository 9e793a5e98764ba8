"""The depth figure's reading (lvae_core.campaign.depth_figure) on results folders written
here: every paired difference against numpy computed from the per-image values, and the
verdict rules on cases built to hold, to fail and to stay open."""
import math

import numpy as np
import pytest

from lvae_core.campaign import depth_figure as df
from lvae_core.results import Results

N = 400          # images
EPOCH = 300


def nll_offsets(**changes) -> dict:
    """Mean NLL above a common base for every (model, layers) of the figure: the paper's
    picture (flat plain VAE, depth paying with BN and warm-up, the ladder best), with
    ``changes`` {run name: offset} replacing single runs."""
    offsets = {}
    for model, shift in (("VAE", 3.0), ("VAE+BN", 2.5), ("VAE+BN+WU", 2.0),
                         ("LVAE+BN+WU", 1.5)):
        for n in df.LAYERS:
            gain = 0.0 if model in ("VAE", "VAE+BN") else 0.4 * (n - 1)
            name = df.run_name(model, n)
            if name not in offsets:
                offsets[name] = shift - gain
    offsets.update(changes)
    return offsets


def write_folder(folder, offsets: dict, missing=(), seed=0) -> dict:
    """One learning-curve point at EPOCH per run (test and train per-image values); returns
    the per-image test NLLs written, {run name: array}."""
    rng = np.random.default_rng(seed)
    base = 230 + 5 * rng.standard_normal(N)
    res, written = Results(folder), {}
    for name, offset in offsets.items():
        if name in missing:
            continue
        nll = base + offset + 0.3 * rng.standard_normal(N)
        written[name] = nll
        res.write_curve({"name": name, "points": [dict(
            epoch=EPOCH, test_nll=float(nll.mean()),
            test_nll_sem=float(nll.std(ddof=1) / math.sqrt(N)),
            test_elbo=-float(nll.mean()) - 2, active_units=[3, 1], kl_per_layer=[4.0, 1.0],
            train_nll=float(nll.mean()) - 1, train_seconds=3600.0)]})
        res.add_curve_images(name, EPOCH, -nll)
        res.add_curve_images(name, EPOCH, -(nll - 1), which="train")
    return written


def paired(a, b):
    d = a - b
    return d.mean(), d.std(ddof=1) / math.sqrt(len(d))


def test_the_ladder_at_one_layer_is_the_hierarchy():
    assert df.run_name("LVAE+BN+WU", 1) == df.run_name("VAE+BN+WU", 1) == "hvae-L1-bn-wu"
    assert df.run_name("LVAE+BN+WU", 4) == "lvae-L4-bn-wu"
    names = {df.run_name(m, n) for m in df.DEPTH_FIGURE for n in df.LAYERS}
    assert len(names) == 19


def test_every_comparison_is_the_paired_difference_of_the_per_image_values(tmp_path):
    nll = write_folder(tmp_path, nll_offsets())
    table = df.claims([tmp_path], epoch=EPOCH)
    assert len(table) == sum(len(p) for p in df.CLAIMS.values())
    rows = table.set_index("a − b")
    mean, se = paired(nll["lvae-L3-bn-wu"], nll["hvae-L3-bn-wu"])
    row = rows.loc["LVAE+BN+WU L3 − VAE+BN+WU L3"]
    assert row["ΔNLL"] == pytest.approx(mean, abs=0.006)
    assert row["paired SE"] == pytest.approx(se, abs=0.006)
    # The difference of differences: how much more four layers gain with BN and warm-up.
    mean, se = paired(nll["hvae-L4-bn-wu"] - nll["hvae-L1-bn-wu"],
                      nll["hvae-L4-plain"] - nll["hvae-L1-plain"])
    row = rows.loc["(VAE+BN+WU L4 − L1) − (VAE L4 − L1)"]
    assert row["ΔNLL"] == pytest.approx(mean, abs=0.006)
    assert row["paired SE"] == pytest.approx(se, abs=0.006)
    assert row["ΔNLL"] == pytest.approx(-1.2, abs=0.1)          # 3 × 0.4 built in
    # The train panel's values are read instead when asked for.
    train = df.claims([tmp_path], epoch=EPOCH, which="train").set_index("a − b")
    assert train.loc["VAE L5 − VAE L1", "ΔNLL"] == rows.loc["VAE L5 − VAE L1", "ΔNLL"]


def test_verdicts_hold_on_the_papers_picture(tmp_path):
    write_folder(tmp_path, nll_offsets())
    verdicts = df.verdicts(df.claims([tmp_path], epoch=EPOCH))
    assert list(verdicts["verdict"]) == ["holds"] * 3
    assert list(verdicts["contradict"]) == [0, 0, 0]


def test_one_measured_contradiction_is_enough(tmp_path):
    # The plain five-layer model a nat better than the one-layer one: claim 1 fails; the
    # ladder a nat worse at three layers: claim 3 fails; claim 2 is untouched by either
    # (its depth gains are 1.6 nats with BN and warm-up against 1 without).
    offsets = nll_offsets(**{"hvae-L5-plain": 2.0, "lvae-L3-bn-wu": 2.2})
    write_folder(tmp_path, offsets)
    verdicts = df.verdicts(df.claims([tmp_path], epoch=EPOCH))
    assert list(verdicts["verdict"]) == ["does not hold", "holds", "does not hold"]
    assert list(verdicts["contradict"]) == [1, 0, 1]


def test_a_difference_within_two_standard_errors_leaves_a_claim_unresolved(tmp_path):
    # the ladder level with the hierarchy at two layers; every other comparison agrees
    offsets = nll_offsets()
    write_folder(tmp_path, nll_offsets(**{"lvae-L2-bn-wu": offsets["hvae-L2-bn-wu"]}))
    table = df.claims([tmp_path], epoch=EPOCH).set_index("a − b")
    assert table.loc["LVAE+BN+WU L2 − VAE+BN+WU L2", "verdict"].startswith("no difference")
    verdicts = df.verdicts(table.reset_index())
    assert list(verdicts["verdict"]) == ["holds", "holds", "unresolved"]
    assert list(verdicts["agree"]) == [4, 6, 3]


def test_claims_stay_open_while_runs_are_missing(tmp_path):
    write_folder(tmp_path, nll_offsets(), missing={"lvae-L2-bn-wu", "hvae-L2-plain"})
    table = df.claims([tmp_path], epoch=EPOCH)
    assert not table["a − b"].str.contains("L2").any()
    verdicts = df.verdicts(table)
    assert list(verdicts["verdict"]) == ["open"] * 3
    assert verdicts.loc["3. the ladder is best at every depth",
                        "comparisons measured"] == "3 of 4"
    # No run at all: every claim open, nothing measured.
    empty = df.verdicts(df.claims([tmp_path / "none"], epoch=EPOCH))
    assert list(empty["verdict"]) == ["open"] * 3


def test_points_come_from_the_first_folder_that_has_them(tmp_path):
    first, second = tmp_path / "depth", tmp_path / "protocol"
    write_folder(first, nll_offsets(), missing={"hvae-L5-bn-wu"})
    nll = write_folder(second, {"hvae-L5-bn-wu": 0.0, "hvae-L1-plain": 9.0}, seed=1)
    Results(first).record_event("hvae-L4-plain", {"event": "diverged", "epoch": 17})
    points = df.points([first, second], epoch=EPOCH).set_index(["model", "layers"])
    assert len(points) == 20                      # 4 models × 5 depths, one run twice
    assert points.loc[("VAE+BN+WU", 5), "folder"] == "protocol"
    assert points.loc[("VAE+BN+WU", 5), "test_nll"] == pytest.approx(nll["hvae-L5-bn-wu"]
                                                                     .mean())
    assert points.loc[("VAE", 1), "folder"] == "depth"       # the first folder wins
    assert points.loc[("VAE", 4), "diverged"] and not points.loc[("VAE", 3), "diverged"]
    assert points.loc[("LVAE+BN+WU", 1), "run"] == "hvae-L1-bn-wu"
    none = df.points([tmp_path / "none"], epoch=EPOCH)
    assert none["test_nll"].isna().all()


def test_effects_table(tmp_path):
    nll = write_folder(tmp_path, nll_offsets(), missing={"hvae-L3-bn"})
    table = df.effects([tmp_path], epoch=EPOCH)
    assert list(table.columns) == [f"L{n}" for n in df.LAYERS]
    assert table.loc["ladder: LVAE+BN+WU − VAE+BN+WU", "L1"] == "—"
    assert table.loc["BN: VAE+BN − VAE", "L3"] == "not yet"
    mean, se = paired(nll["hvae-L2-bn"], nll["hvae-L2-plain"])
    assert table.loc["BN: VAE+BN − VAE", "L2"] == f"{round(mean, 2):+.2f} ({round(se, 2):.2f})"


def test_cost_is_the_recorded_time_and_the_fastest_rate_at_each_depth(tmp_path):
    write_folder(tmp_path, nll_offsets())
    res = Results(tmp_path)
    curve = res.curve("hvae-L2-bn")                      # a busier run at two layers
    curve["points"][0]["train_seconds"] = 7200.0
    res.write_curve(curve)
    cost = df.full_length_cost([tmp_path], epoch=EPOCH, epochs=2000)
    assert len(cost) == 19
    assert cost["hours for 300"].sum() == pytest.approx(20.0)
    assert cost.loc["hvae-L2-bn", "s per epoch"] == pytest.approx(24.0)
    # 2000 epochs at the fastest rate of each depth: 12 s per epoch for every run.
    assert cost.loc["hvae-L2-bn", "hours for 2000"] == pytest.approx(12 * 2000 / 3600)
    assert cost["hours for 2000"].sum() == pytest.approx(19 * 12 * 2000 / 3600)


def test_the_figure_draws_what_was_measured_and_names_all_four_models(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    nll = write_folder(tmp_path, nll_offsets(), missing={"hvae-L4-plain"})
    table = df.points([tmp_path], epoch=EPOCH)
    fig = df.plot(table, {("VAE+BN+WU", 5): 227.1, ("LVAE+BN+WU", 5): 226.9})
    train, test, final = fig.axes
    assert [t.get_text() for t in fig.legends[0].get_texts()] == list(df.DEPTH_FIGURE)
    plain = next(line for line in test.get_lines() if line.get_label() == "VAE")
    assert list(plain.get_xdata()) == [1, 2, 3, 5]                 # L4 not reached
    assert plain.get_ydata()[0] == pytest.approx(nll["hvae-L1-plain"].mean())
    assert sorted(line.get_label() for line in final.get_lines()) == ["LVAE+BN+WU",
                                                                      "VAE+BN+WU"]


def test_depth_gains_table(tmp_path):
    nll = write_folder(tmp_path, nll_offsets(), missing={"lvae-L3-bn-wu"})
    table = df.depth_gains([tmp_path], epoch=EPOCH)
    assert list(table.index) == list(df.DEPTH_FIGURE)
    assert list(table.columns) == [f"L{n} − L1" for n in (2, 3, 4, 5)]
    assert table.loc["LVAE+BN+WU", "L3 − L1"] == "not yet"
    # the ladder's one-layer model is the hierarchy's
    mean, se = paired(nll["lvae-L4-bn-wu"], nll["hvae-L1-bn-wu"])
    assert table.loc["LVAE+BN+WU", "L4 − L1"] == f"{round(mean, 2):+.2f} ({round(se, 2):.2f})"
    assert table.loc["VAE+BN+WU", "L4 − L1"].startswith("-1.2")        # 3 × 0.4 built in


def test_same_seed_compares_only_the_runs_both_folders_trained(tmp_path):
    """Runs written to two folders: the rows are the runs both reached, each with its
    folder's NLL and the paired difference computed by numpy; an identical copy gives 0."""
    first = write_folder(tmp_path / "first", nll_offsets(), seed=1)
    second = write_folder(tmp_path / "second", nll_offsets(),
                          missing=[n for n in first if n != "hvae-L5-bn-wu"], seed=2)
    curve = Results(tmp_path / "second").curve("hvae-L5-bn-wu")
    curve["points"][0]["active_units"] = [2, 0]
    Results(tmp_path / "second").write_curve(curve)
    Results(tmp_path / "copy").write_curve(Results(tmp_path / "first").curve("hvae-L1-plain"))
    Results(tmp_path / "copy").add_curve_images("hvae-L1-plain", EPOCH,
                                                -first["hvae-L1-plain"])
    table = df.same_seed(tmp_path / "first", tmp_path / "second", epoch=EPOCH)
    assert list(table.index) == ["hvae-L5-bn-wu"]
    row = table.loc["hvae-L5-bn-wu"]
    mean, se = paired(second["hvae-L5-bn-wu"], first["hvae-L5-bn-wu"])
    assert row["ΔNLL"] == pytest.approx(mean, abs=6e-4)
    assert row["paired SE"] == pytest.approx(se, abs=6e-4)
    assert row["first"] == pytest.approx(first["hvae-L5-bn-wu"].mean(), abs=0.006)
    assert row["second"] == pytest.approx(second["hvae-L5-bn-wu"].mean(), abs=0.006)
    biggest = np.abs(second["hvae-L5-bn-wu"] - first["hvae-L5-bn-wu"]).max()
    assert row["largest |Δ| on one image"] == pytest.approx(biggest, abs=6e-4)
    assert row["active units"] == "3-1 → 2-0"
    same = df.same_seed(tmp_path / "first", tmp_path / "copy", epoch=EPOCH).loc["hvae-L1-plain"]
    assert same["ΔNLL"] == 0 and same["largest |Δ| on one image"] == 0
    assert df.same_seed(tmp_path / "first", tmp_path / "copy", epoch=EPOCH + 1).empty


def test_same_seed_by_epoch_is_same_seed_at_each_epoch(tmp_path):
    write_folder(tmp_path / "first", nll_offsets(), seed=1)
    write_folder(tmp_path / "second", nll_offsets(), seed=2,
                 missing=[n for n in nll_offsets() if n not in ("hvae-L5-bn-wu", "hvae-L1-bn")])
    table = df.same_seed_by_epoch(tmp_path / "first", tmp_path / "second")
    assert list(table.columns) == [EPOCH] and list(table.index) == ["hvae-L1-bn",
                                                                     "hvae-L5-bn-wu"]
    at = df.same_seed(tmp_path / "first", tmp_path / "second", epoch=EPOCH)
    for run in table.index:
        row = at.loc[run]
        assert table.loc[run, EPOCH] == f"{row['ΔNLL']:+.2f} ({row['paired SE']:.2f})"
    wider = df.same_seed_by_epoch(tmp_path / "first", tmp_path / "second",
                                  epochs=(EPOCH, EPOCH + 1))
    assert (wider[EPOCH + 1] == "—").all() and (wider[EPOCH] == table[EPOCH]).all()
