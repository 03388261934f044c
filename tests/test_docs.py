"""The README and the help page stay whole and name every command the bundle registers."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(*path):
    with open(os.path.join(ROOT, *path), encoding='utf-8') as f:
        return f.read()


def test_no_merge_conflict_is_left_in_the_docs():
    for path in (('README.md',), ('docs', 'user', 'commands', 'cryotrans.html'), ('docs', 'benchmarks.md'),
                 ('docs', 'robustness.md'), ('bundle_info.xml',)):
        text = read(*path)
        assert not re.search(r'^(<<<<<<<|=======|>>>>>>>)( |$)', text, re.M), path


def test_every_registered_command_has_its_anchor_and_usage_on_the_help_page():
    commands = re.findall(r'ChimeraX :: Command :: cryotrans (\w+) ::', read('bundle_info.xml'))
    page = read('docs', 'user', 'commands', 'cryotrans.html')
    assert len(commands) >= 7
    for name in commands:
        assert f'<a name="{name}"></a>' in page and f'<b>cryotrans {name}</b>' in page, name
        assert f'`cryotrans {name}' in read('README.md'), name


def test_every_picture_of_the_readme_and_the_help_page_exists_and_the_bundle_ships_the_help_pages():
    import fnmatch
    shipped = re.findall(r'<ExtraFileGroup source="([^"]+)">([^<]+)</ExtraFileGroup>', read('bundle_info.xml'))
    page_dir = os.path.join('docs', 'user', 'commands')
    for src in re.findall(r'<img src="([^"]+)"', read(page_dir, 'cryotrans.html')):
        path = os.path.normpath(os.path.join(page_dir, src))        # as in the installed bundle
        assert os.path.isfile(os.path.join(ROOT, path)), src
        assert any(fnmatch.fnmatch(path, os.path.normpath(g)) and os.path.dirname(path) == os.path.normpath(to)
                   for g, to in shipped), f'{src}: not in an ExtraFileGroup of bundle_info.xml'
    readme = re.findall(r'<img src="([^"]+)"|\]\((docs/pictures/[^)]+)\)', read('README.md'))
    assert len(readme) >= 6
    for src in (a or b for a, b in readme):
        assert os.path.isfile(os.path.join(ROOT, src)), src
