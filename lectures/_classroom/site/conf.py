"""Sphinx configuration of the lmmteach course website (built by `python3 course.py site`).

Sphinx + myst-nb renders the lecture notebooks with their stored outputs (no execution), MathJax 3 is served
from the site's own _static/mathjax (copied there by classroom.py from the django-static-mathjax package), so
the site works with no network. The theme is sphinx-book-theme (Jupyter Book 1's look).
"""

project = "lmmteach"
author = "lmmteach course"
copyright = "lmmteach authors; lecture content follows Helwig (2017), Linear Mixed-Effects Regression"

extensions = ["myst_nb"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

# Notebooks are shown as stored: the test suite (nbval) guarantees the stored outputs are current.
nb_execution_mode = "off"
nb_merge_streams = True
nb_code_prompt_show = "Show the {type}"
nb_code_prompt_hide = "Hide the {type}"

# Maths: $...$ and $$...$$ in Markdown cells; MathJax 3 from local files. myst's own MathJax settings would
# restrict typesetting to the math nodes it made, which would leave the maths inside raw HTML (<details>
# solutions) untyped; so Sphinx's defaults stay, with $...$ added for that raw HTML.
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_dmath_double_inline = True  # $$...$$ right after a line of text (as JupyterLab allows) is display maths too
myst_update_mathjax = False
myst_heading_anchors = 4  # links to a section inside a lecture (classroom.py turns Jupyter's anchors into these)
mathjax_path = "mathjax/tex-chtml-full.js"
mathjax3_config = {
    "tex": {
        "inlineMath": [["$", "$"], ["\\(", "\\)"]],
        "displayMath": [["$$", "$$"], ["\\[", "\\]"]],
        "processEscapes": True,
        "processEnvironments": True,
    },
}
# MathJax itself is copied into the built site's _static/mathjax by classroom.py (its fonts load relative to it).

html_theme = "sphinx_book_theme"
html_title = "lmmteach: linear mixed-effects regression"
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": True,
    "home_page_in_toc": True,
    "navigation_with_keys": True,
}
html_show_sourcelink = False
html_last_updated_fmt = None
suppress_warnings = ["mystnb.unknown_mime_type"]
