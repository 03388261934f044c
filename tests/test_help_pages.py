"""The help pages, held to what the bundle registers: every keyword of every command has its anchor on the
command page, the option list of cryotrans morph is the one settings.OPTIONS make, the command line's
options are on the page of how it works, links between the pages land, and ChimeraX's help finds them."""

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, 'docs', 'user')
PAGES = {'commands/cryotrans.html', 'cryotrans_method.html', 'tools/cryotrans.html'}


def read(page):
    with open(os.path.join(DOCS, page), encoding='utf-8') as f:
        return f.read()


def camel(name):
    head, *rest = name.split('_')
    return head + ''.join(w.capitalize() for w in rest)


def every_command():
    """Each registered command's name and CmdDesc."""
    from chimerax.cryotrans.bundle import commands
    from chimerax.cryotrans.install_command import install_desc
    return {**{name: desc for name, (desc, _) in commands().items()}, 'cryotrans install': install_desc}


def test_every_keyword_of_every_command_has_its_anchor_and_old_names_are_named():
    import tomllib
    with open(os.path.join(ROOT, 'pyproject.toml'), 'rb') as f:
        assert set(every_command()) == set(tomllib.load(f)['chimerax']['command'])
    page = read('commands/cryotrans.html')
    anchors = re.findall(r'<a name="([^"]+)"', page)
    assert len(anchors) == len(set(anchors)), 'an anchor twice'
    checked = 0
    for name, desc in every_command().items():
        sub = name.split()[1]
        assert f'<a name="{sub}"></a>' in page, name
        for keyword in desc._keyword:
            if keyword in desc._optional:       # a positional argument that may also be named: in the usage
                continue
            word = camel(keyword)
            if keyword in desc._hidden:         # an old name still accepted: said on the page, no anchor
                assert f'<b>{word}</b>, its old name' in page, word
                continue
            assert f'<a name="{sub}-{word}"><b>{word}</b></a>' in page, f'{name} {word}'
            checked += 1
    assert checked >= 50


def test_saveDir_is_hidden_from_usage_but_still_a_keyword_of_morph():
    from chimerax.cryotrans.morph_command import morph_desc
    assert 'save_dir' in morph_desc._keyword and morph_desc._hidden == {'save_dir'}


def test_the_option_list_of_morph_is_what_the_one_declaration_of_options_makes():
    from help_options import BEGIN, END, options_html, with_options
    from cryotrans_engine.settings import OPTIONS
    page = read('commands/cryotrans.html')
    assert with_options(page) == page, 'run python tools/help_options.py'
    made = options_html()
    for option in OPTIONS:
        entry = f'<a name="morph-{option.keyword}"><b>{option.keyword}</b></a>'
        assert (entry in made) == option.chimerax, option.name
        if option.chimerax:
            start = made.index(entry)
            said = made[start:made.index('</blockquote>', start)]
            assert f'(default <b>{option.default_text}</b>)' in said and option.help in said, option.name
            assert all(c in said for c in option.choices), option.name
    checking = subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'help_options.py'), '--check'],
                              capture_output=True, text=True)
    assert checking.returncode == 0, checking.stdout
    with pytest.raises(ValueError, match='no .* lines for the option list'):
        with_options(page.replace(BEGIN, ''))
    assert END in page


def test_a_changed_option_makes_the_page_fail_its_check(tmp_path, monkeypatch):
    """What keeps the page from drifting: an option's default changed in settings.py and not on the page."""
    import dataclasses
    import help_options
    from cryotrans_engine import settings
    changed = tuple(dataclasses.replace(o, default=999) if o.name == 'steps' else o for o in settings.OPTIONS)
    monkeypatch.setattr(help_options, 'OPTIONS', changed)
    page = read('commands/cryotrans.html')
    assert help_options.with_options(page) != page
    assert '(default <b>999</b>)' in help_options.with_options(page)


def test_the_command_lines_options_are_on_the_page_of_how_it_works():
    from cryotrans_engine.cli import parser
    page = read('cryotrans_method.html')
    choices = parser()._subparsers._group_actions[0].choices
    for command in ('morph', 'frames', 'move', 'fsc'):
        assert f'cryotrans {command} ' in page, command
        for action in choices[command]._actions:
            for option in action.option_strings:
                if option.startswith('--') and option != '--help':
                    assert re.search(re.escape(option) + r'(?![\w-])', page), f'{command} {option}'


def test_links_between_the_pages_land_on_a_page_and_an_anchor_that_exist():
    seen = 0
    for page in PAGES:
        text = read(page)
        for href in re.findall(r'href="([^"]+)"', text):
            if href.startswith(('http:', 'https:', 'mailto:')):
                continue
            path, _, anchor = href.partition('#')
            target = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
            if target not in PAGES:       # one of ChimeraX's own pages (volume.html, ...), on its help path
                continue
            seen += 1
            if anchor:
                assert f'name="{anchor}"' in read(target), f'{page}: {href}'
    assert seen >= 30


def test_chimeraxs_help_finds_the_three_pages_in_the_installed_bundle(session):
    from chimerax.core.toolshed import get_help_directories
    from chimerax.cryotrans.tool import CryoTransTool
    bi = session.toolshed.find_bundle('ChimeraX-CryoTRANS', session.logger)
    docs = bi.get_path('docs')
    assert docs in get_help_directories()
    for page in PAGES:
        with open(os.path.join(docs, 'user', page), encoding='utf-8') as f:
            assert f.read() == read(page), page
    assert CryoTransTool.help == 'help:user/tools/cryotrans.html'
