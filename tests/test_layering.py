"""Only rnnplay/tui may import textual; importing rnnplay loads neither torch nor textual."""

import subprocess
import sys


def _run(code: str) -> None:
    subprocess.run([sys.executable, "-c", code], check=True)


def test_import_rnnplay_is_light():
    _run("import sys, rnnplay; assert 'torch' not in sys.modules and 'textual' not in sys.modules")


def test_core_never_imports_textual():
    # every module outside rnnplay.tui, found by walking the package, so new modules are covered
    _run(
        "import importlib, pkgutil, sys, rnnplay\n"
        "from rnnplay import RNN, CharRNN\n"
        "names = [m.name for m in pkgutil.walk_packages(rnnplay.__path__, 'rnnplay.')\n"
        "         if not m.name.startswith('rnnplay.tui')]\n"
        "assert len(names) > 3, names\n"
        "for n in names: importlib.import_module(n)\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "assert not bad, f'core imported textual: {bad[:3]}'\n"
    )
