"""The README and the help pages stay whole and name every command the bundle registers."""

import os
import re
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = ('docs/user/commands/cryotrans.html', 'docs/user/cryotrans_method.html', 'docs/user/tools/cryotrans.html')


def read(*path):
    with open(os.path.join(ROOT, *path), encoding='utf-8') as f:
        return f.read()


def bundle():
    """The bundle's [chimerax] table (pyproject.toml)."""
    with open(os.path.join(ROOT, 'pyproject.toml'), 'rb') as f:
        return tomllib.load(f)['chimerax']


def test_no_merge_conflict_is_left_in_the_docs():
    for path in (('README.md',), ('docs', 'benchmarks.md'), ('docs', 'robustness.md'), ('pyproject.toml',),
                 *(page.split('/') for page in PAGES)):
        text = read(*path)
        assert not re.search(r'^(<<<<<<<|=======|>>>>>>>)( |$)', text, re.M), path


def test_every_registered_command_has_its_anchor_and_usage_on_the_help_page():
    commands = [name.split()[1] for name in bundle()['command']]
    page = read('docs', 'user', 'commands', 'cryotrans.html')
    assert len(commands) >= 8
    for name in commands:
        assert f'<a name="{name}"></a>' in page and f'<b>cryotrans {name}</b>' in page, name
        assert f'`cryotrans {name}' in read('README.md'), name


def test_every_picture_of_the_readme_and_the_help_page_exists_and_the_bundle_ships_the_help_pages():
    import fnmatch
    shipped = [(g, os.path.relpath(to, 'src')) for to, globs in bundle()['extra-files'].items() for g in globs]
    for page in PAGES:
        page_dir = os.path.dirname(page)
        assert any(fnmatch.fnmatch(page, g) and page_dir == to for g, to in shipped), f'{page}: not shipped'
        for src in re.findall(r'<img src="([^"]+)"', read(page)):
            path = os.path.normpath(os.path.join(page_dir, src))        # as in the installed bundle
            assert os.path.isfile(os.path.join(ROOT, path)), src
            assert any(fnmatch.fnmatch(path, g) and os.path.dirname(path) == to
                       for g, to in shipped), f'{src}: not in the extra-files of pyproject.toml'
    readme = re.findall(r'<img src="([^"]+)"|\]\((docs/pictures/[^)]+)\)', read('README.md'))
    assert len(readme) >= 6
    for src in (a or b for a, b in readme):
        assert os.path.isfile(os.path.join(ROOT, src)), src
