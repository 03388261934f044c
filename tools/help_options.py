"""The training options of `cryotrans morph` on its help page, made from their one declaration
(engine/cryotrans_engine/settings.py, OPTIONS): each keyword with its anchor, values, default and help.

    python tools/help_options.py            rewrites the list in docs/user/commands/cryotrans.html
    python tools/help_options.py --check    exits 1 when the page's list is not what OPTIONS make

The list sits between the BEGIN and END lines on the page; tests/test_help_pages.py fails when it
differs from what this makes, so the page cannot drift from the options.
"""

import html
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'engine'))

from cryotrans_engine.settings import OPTIONS  # noqa: E402  (the engine of this checkout)

PAGE = os.path.join(ROOT, 'docs', 'user', 'commands', 'cryotrans.html')
BEGIN = '<!-- BEGIN training options: made by tools/help_options.py from settings.OPTIONS -->'
END = '<!-- END training options -->'


def values(option):
    """What the keyword takes, as ChimeraX's usage lines write it."""
    if option.choices:
        return ' | '.join(option.choices)
    if option.kind is tuple:
        return '<i>value</i>[<b>,</b><i>value</i>&hellip;]'
    return '<i>N</i>' if option.kind is int else '<i>value</i>'


def option_html(option):
    """One keyword as ChimeraX's pages give it: anchored, its values, then its help and default."""
    return (f'<blockquote>\n'
            f'<a name="morph-{option.keyword}"><b>{option.keyword}</b></a>&nbsp;&nbsp;{values(option)}\n'
            f'<br>\n'
            f'{html.escape(option.help, quote=False)} '
            f'(default <b>{html.escape(option.default_text, quote=False)}</b>)\n'
            f'</blockquote>')


def options_html():
    """The list of every training option that cryotrans morph takes, between its marker lines."""
    return '\n'.join([BEGIN] + [option_html(o) for o in OPTIONS if o.chimerax] + [END])


def with_options(page):
    """The page with its list made anew; ValueError when the page has no marker lines."""
    start, end = page.find(BEGIN), page.find(END)
    if start < 0 or end < start:
        raise ValueError(f'the page has no "{BEGIN}" ... "{END}" lines for the option list')
    return page[:start] + options_html() + page[end + len(END):]


def main(argv):
    with open(PAGE, encoding='utf-8') as f:
        page = f.read()
    made = with_options(page)
    if '--check' in argv:
        if made != page:
            print(f'{PAGE}: the option list is not what settings.OPTIONS make: run python tools/help_options.py')
            return 1
        return 0
    if made != page:
        with open(PAGE, 'w', encoding='utf-8') as f:
            f.write(made)
        print(f'{PAGE}: option list rewritten')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
