"""The docs site: its footer, and a model-zoo table within the page."""

import ast
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

DOCS = os.path.join(ROOT, 'docs')
# Alabaster 1.0.0's layout: a 940-px page less its 220-px sidebar and the
# body's 30-px paddings leaves the body 660 px at any window width of 940 px
# or more (1200 included); its text is 17 px, code 0.9 em of it.
BODY_PX = 940 - 220 - 2 * 30
TEXT_PX = 17
CODE_EM = 0.9
MONOSPACE_CHAR_EM = 0.6  # Consolas, Menlo, DejaVu Sans Mono: 0.55 to 0.6
CELL_PADDING_EM = 2 * 0.7  # table.docutils td: padding 0.25em 0.7em


def conf_assignments():
    with open(os.path.join(DOCS, 'conf.py')) as f:
        tree = ast.parse(f.read())
    values = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                values[node.targets[0].id] = node.value
    return values


def test_the_footer_names_a_year_and_the_holder():
    # Without `copyright` alabaster's footer reads "(c)." and nothing else.
    values = conf_assignments()
    assert 'copyright' in values
    source = ast.unparse(values['copyright']) \
        if isinstance(values['copyright'], ast.AST) else values['copyright']
    assert re.match(r"^'?\d{4}, ", source), source
    assert 'author' in source or 'chainercv_i3d authors' in source


def model_zoo_css():
    with open(os.path.join(DOCS, '_static', 'model_zoo.css')) as f:
        return f.read()


def test_the_model_zoo_table_is_laid_out_within_the_body():
    values = conf_assignments()
    assert '_static' in values['html_static_path']
    assert 'model_zoo.css' in values['html_css_files']
    css = re.sub(r'\s+', ' ', model_zoo_css())
    table = re.search(r'table\.model-zoo \{([^}]*)\}', css).group(1)
    assert 'table-layout: fixed;' in table and 'width: 100%;' in table


def test_every_model_zoo_name_fits_its_column():
    pytest.importorskip('sphinx')
    sys.path.insert(0, os.path.join(DOCS, '_ext'))
    try:
        import model_zoo
    finally:
        sys.path.remove(os.path.join(DOCS, '_ext'))
    from chainercv_i3d.pretrained import MODELS
    font_em = float(re.search(r'table\.model-zoo \{[^}]*font-size: '
                              r'([0-9.]+)em', model_zoo_css()).group(1))
    font_px = TEXT_PX * font_em
    char_px = font_px * CODE_EM * MONOSPACE_CHAR_EM
    assert sum(model_zoo.COLUMN_WIDTHS) == 100
    assert len(model_zoo.COLUMN_WIDTHS) == len(model_zoo.HEADER)
    for name, entry in MODELS.items():
        cells = model_zoo.model_row(name, entry)
        for cell, share in zip(cells, model_zoo.COLUMN_WIDTHS):
            room = BODY_PX * share / 100 - CELL_PADDING_EM * font_px
            # Punctuation right after a literal stays on its line: a
            # 1200-px screenshot broke ``deepmind_kinetics``: inside.
            for literal, attached in re.findall(r'``([^`]+)``(\S*)', cell):
                width = len(literal + attached) * char_px
                assert width <= room, (name, literal, room)


def test_build_docs_without_sphinx_says_to_install_the_docs_extra(tmp_path):
    # A Python without site-packages stands for one without the docs extra.
    python = tmp_path / 'python'
    python.write_text('#!/bin/sh\nexec "{}" -S "$@"\n'.format(sys.executable))
    python.chmod(0o755)
    result = subprocess.run(
        ['bash', os.path.join(ROOT, 'scripts', 'build_docs.sh'), str(python)],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr == (
        'build_docs.sh: {} cannot import Sphinx: install the docs extra: {} '
        '-m pip install --build-constraint constraints/build.txt -e '
        '".[docs]" -c constraints/runtime.txt\n'.format(python, python))


def readme_section(title):
    with open(os.path.join(ROOT, 'README.md')) as f:
        text = f.read()
    start = text.index('\n## ' + title + '\n')
    return text[start:text.index('\n## ', start + 1)]


def test_the_set_up_keeps_the_constraints_and_says_how_to_run_commands():
    set_up = readme_section('Set-up: two commands')
    installs = [line for line in set_up.splitlines()
                if 'pip install' in line and ' -e ' in line]
    assert installs, 'no hand-install line'
    for line in installs:  # without them an extra moves numpy to 2.x
        assert '-c constraints/runtime.txt' in line, line
    assert any('".[mpi]"' in line for line in installs)
    assert '`source .venv/bin/activate`' in set_up
    with open(os.path.join(ROOT, 'scripts', 'demo.sh')) as f:
        demo = f.read()
    last_lines = demo.split('examples/i3d/demo.py')[-1]
    assert 'source .venv/bin/activate' in last_lines
    assert 'install.sh .venv mpi -c constraints/runtime.txt' in \
        last_lines.replace('" \\\n    "', ' ')
