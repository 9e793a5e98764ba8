"""``lv.plotting.show`` saves a named figure at slide resolution when LVAE_FIGURE_DIR is set."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402

import lvae_core.plotting as plotting  # noqa: E402


def _figure():
    fig, ax = plt.subplots(figsize=(plotting.WIDTH, 3))
    ax.plot([0, 1], [0, 1])
    return fig


def test_named_figures_are_saved_at_the_asked_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("LVAE_FIGURE_DIR", str(tmp_path / "figures"))
    monkeypatch.setenv("LVAE_FIGURE_DPI", "200")
    plotting.show(_figure(), "fig-test")
    plotting.show(_figure())                       # unnamed: shown only
    saved = sorted(p.name for p in (tmp_path / "figures").iterdir())
    assert saved == ["fig-test.png", "fig-test.svg"]
    width, _ = Image.open(tmp_path / "figures" / "fig-test.png").size
    # 7.2 inches at 200 dpi, less what bbox_inches="tight" trims from the margins
    assert 0.8 * plotting.WIDTH * 200 < width <= plotting.WIDTH * 200


def test_nothing_is_saved_without_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("LVAE_FIGURE_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    plotting.show(_figure(), "fig-test")
    assert list(tmp_path.iterdir()) == []
