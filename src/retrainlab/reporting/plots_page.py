"""The page `dvc plots show` fills, made to draw without internet.

DVC's own page loads vega, vega-lite and vega-embed from a CDN: offline its interactive
plots stay blank, and nothing says why. This page carries the three inline, as vl-convert
(a pinned dependency, nothing downloaded) bundles them, and DVC fills it as its own: the
plots where `{plot_divs}` stands; it has no `{scripts}`, where DVC's CDN tags would go.
The page is this machine's (.retrainlab/, which git ignores), and so is the setting that
points DVC at it (.dvc/config.local): a clone without them gets DVC's own page until
`retrainlab offline-plots`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from retrainlab.base import layout
from retrainlab.base.errors import RetrainlabError
from retrainlab.base.files import write_atomically

# The Vega-Lite the page draws with: DVC's plot templates, and the project's in .dvc/plots/,
# are Vega-Lite 5 specifications.
VEGA_LITE = "5.21"
# What DVC replaces in a page template, wherever it stands (dvc_render.html.HTML.embed).
PLACEHOLDERS = ("{plot_divs}", "{refresh_tag}", "{scripts}")
PAGE = """<!DOCTYPE html>
<html>
<head>
    {refresh_tag}
    <meta charset="utf-8">
    <title>DVC Plot</title>
    <script>
BUNDLE
    </script>
    <style>
        table {
            border-spacing: 15px;
        }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


def page() -> str:
    """The page template, with vega, vega-lite and vega-embed inline."""
    # start-up: vl-convert's bundler is loaded only to write the page
    import vl_convert

    bundle = vl_convert.javascript_bundle(vl_version=VEGA_LITE)
    # A script ends at the first "</script", whatever quotes it is in; DVC would fill a placeholder in it.
    clashes = [text for text in ("</script", *PLACEHOLDERS) if text in bundle.lower()]
    if clashes:
        raise RetrainlabError(f"vl-convert's bundle holds {clashes[0]!r}: it cannot be inlined in a page")
    return PAGE.replace("BUNDLE", bundle, 1)


def install(root: Path) -> Path:
    """Write the page in the DVC repository at `root` and point DVC's local config at it;
    return the page's path."""
    path = root / layout.PLOTS_PAGE
    text = page()
    write_atomically(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))  # as DVC reads it
    # DVC reads a relative html_template from .dvc/.
    setting = (Path("..") / layout.PLOTS_PAGE).as_posix()
    done = subprocess.run([sys.executable, "-m", "dvc", "config", "--local", "plots.html_template", setting],
                          cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip() or f"exit status {done.returncode}").splitlines()[-1]
        raise RetrainlabError(f"dvc config --local plots.html_template failed ({said})")
    return path
