import json

import pytest
from streamlit.testing.v1 import AppTest

from explorer.evaluation import results, sweeps


def open_page(page: str) -> AppTest:
    app = AppTest.from_file("../app.py", default_timeout=120)
    app.run()
    app.switch_page(page).run()
    assert not app.exception, app.exception
    return app


def fooled_counts(app: AppTest) -> str:
    return app.caption[0].value


def test_the_gallery_opens_with_one_grid_for_the_first_sidebar_model():
    app = open_page("app_pages/gallery.py")
    assert app.title[0].value == "Gallery (Figure 1)"
    assert app.selectbox(key="gallery_model").value == "softmax"
    assert len(app.image) == 1
    assert fooled_counts(app).startswith("FGSM fooled")
    assert len(app.get("download_button")) == 1


def test_changing_model_and_eps_redraws_the_grid():
    app = open_page("app_pages/gallery.py")
    app.selectbox(key="gallery_model").set_value("triplet").run()
    assert not app.exception, app.exception
    # the guide's classroom script says so: at eps 0.3 the triplet model gives up all ten digits to BIM, MIM and PGD
    assert "BIM fooled 10 of 10 · MIM fooled 10 of 10 · PGD fooled 10 of 10" in fooled_counts(app)
    app.slider(key="gallery_eps").set_value(0.0).run()
    assert not app.exception, app.exception
    assert fooled_counts(app).startswith("FGSM fooled 0 of 10 · BIM fooled 0 of 10 · MIM fooled 0 of 10 · PGD "
                                         "fooled 0 of 10")
    assert len(app.image) == 1
    app.checkbox(key="gallery_fooled").check().run()
    assert not app.exception, app.exception
    assert not app.image and "No attack fooled triplet" in app.info[0].value


def test_a_random_pick_of_digits():
    app = open_page("app_pages/gallery.py")
    app.radio(key="gallery_digits").set_value("random").run()
    app.number_input(key="gallery_count").set_value(6).run()
    app.number_input(key="gallery_seed").set_value(5).run()
    assert not app.exception, app.exception
    assert len(app.image) == 1
    assert "of 6" in fooled_counts(app) and "--count 6 --seed 5" in app.caption[1].value


def test_the_guide_quotes_the_committed_results():
    app = open_page("app_pages/guide.py")
    assert app.title[0].value == "Guide"
    text = " ".join(" ".join(element.value for element in app.markdown).split())
    table = results.committed("table1")
    assert f"{table['paper']['Ours']['PGD']}%" in text  # the paper's claim: 95.49% under PGD
    strong_pgd = table["tables"]["strong"]["rows"]["Ours_PGD"]["accuracy"]["PGD"]
    assert f"{100 * strong_pgd:.1f}%" in text  # what PGD training really holds under the strong preset
    paper_pgd = table["tables"]["paper"]["rows"]["Ours"]["accuracy"]["PGD"]
    assert f"keeps {100 * paper_pgd:.1f}% under PGD with the paper's own settings" in text
    smallest = results.committed("sweeps")["smallest_flipping_eps"]
    pgd, softmax = (sweeps.median_flipping_eps(smallest[name]["strong"]) for name in ("triplet-pgd", "softmax"))
    assert f"eps = {pgd:.2f} or more to flip, against {softmax:.2f} for softmax" in text
    assert len(app.get("page_link")) == 5
    control = table["tables"]["strong"]["rows"]["Softmax_PGD"]["accuracy"]["PGD"]
    assert f"{100 * control:.1f}% under the strong one, against" in text  # the control, said with its number
    converged = results.committed("converged")["models"]
    assert (f"The converged evaluation (Table 1 page) leaves {100 * converged['triplet-pgd']['robust_accuracy']:.2f}%"
            in text)
    control_verdict = "converged" if converged["softmax-pgd"]["converged"] else "not converged: lower still"
    assert (f"The converged evaluation leaves it {100 * converged['softmax-pgd']['robust_accuracy']:.2f}% "
            f"({control_verdict}) against {100 * converged['triplet-pgd']['robust_accuracy']:.2f}%") in text


def test_the_guide_opens_the_two_pgd_trained_models_side_by_side():
    app = open_page("app_pages/guide.py")
    app.button(key="compare_pgd_models").click().run()
    assert not app.exception, app.exception
    assert app.title[0].value == "Latent space (Figure 2)"
    assert app.session_state["model_pair"] == ["softmax-pgd", "triplet-pgd"]
    assert "**softmax-pgd**" in " ".join(element.value for element in app.markdown)


def test_median_flipping_eps_stays_on_the_grid_and_counts_unflipped_digits():
    assert sweeps.median_flipping_eps([0.1, 0.2, 0.3, 0.4]) == 0.2
    assert sweeps.median_flipping_eps([0.1, None, 0.3]) == 0.3
    assert sweeps.median_flipping_eps([None, None, 0.1]) is None


def test_the_lens_draws_each_models_loss_surface_and_attack_margins():
    app = open_page("app_pages/lens.py")
    surface, curves = (json.loads(chart.proto.spec) for chart in app.get("plotly_chart"))
    heat_maps = [trace for trace in surface["data"] if trace["type"] == "heatmap"]
    assert [len(trace["z"]) for trace in heat_maps] == [21, 21]  # softmax and triplet, 21 x 21 points each
    names = {(trace["name"], len(trace["y"])) for trace in curves["data"] if trace.get("name")}
    assert names == {("PGD-40 (paper preset)", 41), ("APGD-CE (100 iterations)", 101)}  # every iterate, start too


def test_the_table1_chart_puts_the_paper_claim_beside_each_of_our_evaluations():
    app = open_page("app_pages/table1.py")
    figure = json.loads(app.get("plotly_chart")[0].proto.spec)
    committed = results.committed("table1")
    bars = {trace["name"]: dict(zip(trace["y"], trace["x"], strict=True)) for trace in figure["data"]}
    assert bars["the paper's claim (its PGD column)"]["triplet-pgd"] == 97.23
    assert bars["ours, strong preset"]["triplet-pgd"] == 100 * committed["tables"]["strong"]["rows"]["Ours_PGD"][
        "worst_case"]
    assert bars["ours, paper preset"]["softmax"] == 100 * committed["tables"]["paper"]["rows"]["Softmax"]["worst_case"]


def test_the_table1_page_shows_how_near_the_edge_each_models_survivors_sit():
    """The committed rows' runs past eps = 0.3, drawn: each line starts at the converged figure and falls by what
    one APGD-CE run broke at each larger eps."""
    app = open_page("app_pages/table1.py")
    figures = [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]
    edge = next(f for f in figures if f["layout"]["xaxis"].get("title", {}).get("text") == "eps (L-inf)")
    rows = results.committed("converged")["models"]
    lines = {trace["name"]: trace for trace in edge["data"]}
    assert sorted(lines) == sorted(name for name, row in rows.items() if row["beyond"]["standing"])
    for name, trace in lines.items():
        row = rows[name]
        assert trace["x"] == [0.3, 0.305, 0.31, 0.32]
        expected = [row["robust_accuracy"]] + [(row["beyond"]["standing"] - broke) / row["digits"]
                                               for broke in row["beyond"]["broke"]]
        assert trace["y"] == pytest.approx([100 * value for value in expected])
    falls = {name: rows[name]["beyond"]["broke"][1] / rows[name]["beyond"]["standing"] for name in lines}
    assert falls["triplet-pgd"] > 3 * falls["softmax-pgd"]  # the model slowest to converge sits nearest the edge
