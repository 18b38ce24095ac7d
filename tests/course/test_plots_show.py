"""The lectures' figure helpers shared by every lecture: a figure displayed with its alt text in the output, and
the QQ plot's y = x reference line for values that should be N(0, 1) themselves."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.pylabtools import select_figure_formats

from lmmteach import plots


def test_show_puts_the_alt_text_in_the_png_output_and_closes_the_figure(monkeypatch):
    published = []
    shell = InteractiveShell.instance()
    select_figure_formats(shell, {"png"})  # what `%matplotlib inline` sets up in a kernel
    monkeypatch.setattr(shell.display_pub, "publish", lambda data, metadata=None, **kw: published.append((data, metadata)))
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    plots.show(fig, alt="A rising line from (0, 0) to (1, 1).")
    (data, metadata), = published
    assert data["image/png"]  # the figure itself (the PNG formatter of IPython)
    assert metadata["image/png"]["alt"] == "A rising line from (0, 0) to (1, 1)."
    assert not plt.fignum_exists(fig.number), "shown once: the inline backend must not draw it again"


@pytest.mark.parametrize("alt", ["", "   ", None])
def test_show_needs_a_description(alt):
    fig, _ = plt.subplots()
    with pytest.raises(ValueError, match="alt"):
        plots.show(fig, alt=alt)


def test_normal_qq_identity_line_is_y_equals_x():
    v = np.random.default_rng(5).normal(0, 3, size=40)  # spread 3: a fitted line would have slope ~3
    ax = plots.plot_normal_qq(v, line="identity")
    x, y = ax.lines[0].get_data()
    np.testing.assert_allclose(y, x)
    assert ax.lines[0].get_label() == "y = x"


def test_normal_qq_rejects_an_unknown_line():
    with pytest.raises(ValueError, match="line must be 'quartiles' or 'identity'"):
        plots.plot_normal_qq([0.0, 1.0, 2.0], line="robust")
