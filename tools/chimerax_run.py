"""Real ChimeraX 1.7.1, headless, from this venv's Python: a session for tests, and a launcher.

    python tools/chimerax_run.py [--cmd "COMMANDS"] [SCRIPT.cxc ...]

runs ChimeraX commands (each --cmd, then each script) as `ChimeraX --nogui --exit`
would, printing the log; exit status 1 when a command fails.  start_session()
mirrors chimerax/core/__main__.py init(); only ONE Session per process can exist
(a second fails with "Can not reuse CmdDesc instances").
"""
import os
import sys

# ---------------------------------------------------------------------------------------------
# Built-in bundles.  The PyPI wheel is one distribution without per-bundle "ChimeraX :: Bundle"
# classifiers, so its toolshed sees none of them.  Each row mirrors the bundle's bundle_info.xml
# in ChimeraX 1.7.1 (RBVI/ChimeraX tag v1.7.1, src/bundles/<dir>/bundle_info.xml or pyproject).
#   name, version, package, (min, max session version), customInit, commands,
#   managers, providers [(manager, provider name, {keywords as in the xml})], InitAfter
# ---------------------------------------------------------------------------------------------
_VOL = 'Volume data'
# (format, nickname, suffixes) - map_data "data formats" providers; map opens and saves them.
# (.cmap, which `vseries save` writes, needs PyTables.)
_MAP_FORMATS = [('MRC density map', 'mrc', '.mrc'), ('CCP4 density map', 'ccp4', '.ccp4,.map'),
                ('Chimera map', 'cmap', '.cmap,.cmp')]
_AFTER_FORMATS = {'manager': ['ChimeraX-DataFormats']}

BUILTINS = [
    ('ChimeraX-Core', '1.7.1', 'chimerax.core', (1, 2), False, [], [], [], {}),
    ('ChimeraX-Graphics', '1.1.1', 'chimerax.graphics', (1, 1), False, [], [], [], {}),
    ('ChimeraX-Geometry', '1.3', 'chimerax.geometry', (1, 1), False, [], [], [], {}),
    ('ChimeraX-DataFormats', '1.2.3', 'chimerax.data_formats', (1, 1), False, [],
     ['data formats'], [], {}),
    ('ChimeraX-OpenCommand', '1.13.1', 'chimerax.open_command', (1, 1), False,
     ['open', 'usage open'], ['open command'], [], _AFTER_FORMATS),
    ('ChimeraX-SaveCommand', '1.5.1', 'chimerax.save_command', (1, 1), False,
     ['save', 'usage save'], ['save command'], [], _AFTER_FORMATS),
    ('ChimeraX-CoreFormats', '1.2', 'chimerax.core_formats', (1, 1), False, [], [], [
        ('data formats', 'ChimeraX session', dict(
            category='Session', nicknames='session', suffixes='.cxs',
            mime_types='application/x-chimerax-session',
            reference_url='help:user/commands/save.html#session')),
        ('data formats', 'ChimeraX commands', dict(
            category='Command script', suffixes='.cxc', nicknames='cmd',
            mime_types='application/x-chimerax-code',
            reference_url='help:user/commands/usageconventions.html')),
        ('data formats', 'Python', dict(
            category='Command script', suffixes='.py', synopsis='Python code',
            mime_types='text/x-python', reference_url='http://www.python.org')),
        ('open command', 'ChimeraX session', dict(want_path='true')),
        ('open command', 'ChimeraX commands', dict(want_path='true')),
        ('open command', 'Python', {}),
        ('save command', 'ChimeraX session', dict(compression_okay='false')),
    ], {}),
    ('ChimeraX-StdCommands', '1.12.4', 'chimerax.std_commands', (1, 1), True,
     ['alias', 'camera', 'cd', 'close', 'color', 'cofr', 'coordset', 'rmsd', 'delete', 'exit', 'hide', 'show',
      'display', 'lighting', 'material', 'measure center', 'measure correlation',
      'measure inertia', 'measure rotation', 'measure symmetry', 'move', 'perframe',
      '~perframe', 'pwd', 'rename', 'runscript', 'select', '~select', 'set', 'stop', 'time',
      'transparency', 'turn', 'undo', 'redo', 'usage', 'version', 'view', 'wait', 'zoom'],
     [], [], {}),
    ('ChimeraX-MapData', '2.0', 'chimerax.map_data', (1, 1), False, [], [],
     [('data formats', f, dict(nicknames=n, category=_VOL, suffixes=s))
      for f, n, s in _MAP_FORMATS], {}),
    ('ChimeraX-Map', '1.1.4', 'chimerax.map', (1, 1), True,
     ['volume', 'molmap', 'measure mapstats', 'measure mapvalues'], [],
     [('open command', f, dict(want_path='true', batch='true')) for f, _, _ in _MAP_FORMATS]
     + [('save command', f, {}) for f, _, _ in _MAP_FORMATS], {}),
    ('ChimeraX-Surface', '1.0.1', 'chimerax.surface', (1, 1), True,   # its settings: sessions
     ['measure area', 'measure volume', 'surface dust', 'surface undust', 'color sample',
      'volume splitbyzone'], [], [], {}),
    ('ChimeraX-MapSeries', '2.1.1', 'chimerax.map_series', (1, 1), True,
     ['vseries', 'measure motion'], [], [], {}),
    # Atomic models (cryotrans partition ... atoms) and markers (drawn regions)
    ('ChimeraX-AtomicLibrary', '14.0.2', 'chimerax.atomic_lib', (1, 1), False, [], [], [], {}),
    ('ChimeraX-Atomic', '1.49', 'chimerax.atomic', (1, 1), True, [], [], [], {}),
    ('ChimeraX-PDB', '2.7.4', 'chimerax.pdb', (1, 1), False, [], [], [
        ('data formats', 'PDB', dict(category='Molecular structure', suffixes='.pdb,.pdb1,.ent,.pqr',
                                     default_for='.pdb', mime_types='chemical/x-pdb,chemical/x-spdbv',
                                     encoding='utf-8')),
        ('open command', 'PDB', {}),
        ('save command', 'PDB', dict(compression_okay='false')),
    ], {}),
    ('ChimeraX-Markers', '1.0', 'chimerax.markers', (1, 1), True, ['marker'], [], [
        ('data formats', 'Marker model', dict(category='Generic 3D objects', nicknames='markers',
                                              suffixes='.cmm')),
        ('open command', 'Marker model', dict(want_path='true')),
        ('save command', 'Marker model', {}),
    ], {}),
    # `save x.png` (tools/render_pictures.py; needs offscreen rendering: start_session(offscreen=True))
    ('ChimeraX-ImageFormats', '1.2', 'chimerax.image_formats', (1, 1), False, [], [], [
        ('data formats', 'Portable Network Graphics', dict(category='Image', nicknames='png',
                                                           suffixes='.png', mime_types='image/png')),
        ('save command', 'Portable Network Graphics', {}),
    ], {}),
    ('ChimeraX-MapFilter', '2.0.1', 'chimerax.map_filter', (1, 1), False,   # volume morph: peers
     ['volume add', 'volume copy', 'volume gaussian', 'volume morph', 'volume resample',
      'volume scale', 'volume subtract', 'volume threshold', 'vop'], [], [], {}),
]


def builtin_bundle_infos():
    """BundleInfo objects for BUILTINS, as the toolshed would build them from wheel metadata."""
    from chimerax.core.toolshed.info import BundleInfo, CommandInfo
    bis = []
    for name, ver, pkg, (lo, hi), custom, cmds, mgrs, provs, inits in BUILTINS:
        bi = BundleInfo(name, True, version=ver, api_package_name=pkg, synopsis=name,
                        session_versions=range(lo, hi + 1), custom_init=custom,
                        packages=[tuple(pkg.split('.'))], inits=dict(inits),
                        managers={m: {} for m in mgrs},
                        providers={f'{m}/{p}': dict(kw) for m, p, kw in provs})
        bi.commands = [CommandInfo(c, ['General']) for c in cmds]
        bis.append(bi)
    return bis


def _declare_builtins():
    """Make every (re)load of the installed-bundle list include BUILTINS, exactly where bundles
    found from installed distributions go (so toolshed reload keeps them too)."""
    from chimerax.core.toolshed import installed
    cls = installed.InstalledBundleCache
    if getattr(cls.load, '_cx_builtins', False):
        return
    orig = cls.load

    def load(self, *args, **kw):
        orig(self, *args, **kw)
        have = {bi.name for bi in self}
        self.extend(bi for bi in builtin_bundle_infos() if bi.name not in have)
    load._cx_builtins = True
    cls.load = load


def _fix_grako():
    # grako 3.99.9 uses collections.Mapping etc., removed in Python 3.10.
    import collections
    import collections.abc
    for n in collections.abc.__all__:
        if not hasattr(collections, n):
            setattr(collections, n, getattr(collections.abc, n))


_session = None


def start_session(state_dir=None, offscreen=False):
    """Return the process-wide headless ChimeraX Session (created on first call).

    state_dir: folder for XDG config/cache/data (user settings, toolshed cache, user site);
    a fresh temporary folder when None. offscreen: render with OSMesa, so `save x.png` works
    (needs Debian's libosmesa6 and PyOpenGL==3.1.7; sets PYOPENGL_PLATFORM=osmesa)."""
    global _session
    if _session is not None:
        return _session
    if offscreen:
        os.environ['PYOPENGL_PLATFORM'] = 'osmesa'   # before OpenGL is first imported
    if state_dir is None:
        import tempfile
        state_dir = tempfile.mkdtemp(prefix='chimerax-')
    for var, sub in (('XDG_CONFIG_HOME', 'config'), ('XDG_CACHE_HOME', 'cache'),
                     ('XDG_DATA_HOME', 'data')):
        os.environ[var] = os.path.join(state_dir, sub)
    os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')
    _fix_grako()
    import warnings
    warnings.filterwarnings('ignore', message='pkg_resources is deprecated')  # setuptools 80
    import builtins   # the ChimeraX app defines this builtin decorator; some modules use it
    builtins.__dict__.setdefault('line_profile', lambda f: f)

    import appdirs
    import chimerax
    from chimerax.core import version
    from packaging.version import Version
    v = Version(version)
    chimerax.app_dirs = ad = appdirs.AppDirs('ChimeraX', appauthor='UCSF',
                                             version=f'{v.major}.{v.minor}')
    for d in (ad.user_data_dir, ad.user_config_dir, ad.user_cache_dir):
        os.makedirs(d, exist_ok=True)
    chimerax.app_dirs_unversioned = appdirs.AppDirs('ChimeraX', appauthor='UCSF')
    import site
    site.USER_BASE = ad.user_data_dir
    site.USER_SITE = os.path.join(site.USER_BASE, 'lib', 'python%d.%d' % sys.version_info[:2],
                                  'site-packages')
    site.ENABLE_USER_SITE = True
    chimerax.app_bin_dir = os.path.join(sys.prefix, 'bin')
    chimerax.app_data_dir = os.path.join(sys.prefix, 'share')
    chimerax.app_lib_dir = os.path.join(sys.prefix, 'lib')

    from chimerax.core import session as cxsession, core_settings, attributes, toolshed
    sess = cxsession.Session('ChimeraX', debug=False, silent=False, minimal=False,
                             offscreen_rendering=offscreen)
    core_settings.init(sess)
    cxsession.register_misc_commands(sess)
    attributes.RegAttrManager(sess)
    from chimerax.core.nogui import NoGuiLog
    sess.logger.add_log(NoGuiLog())
    sess.ui.stereo = sess.ui.autostart_tools = False
    sess.ui.initialize_color_output(False)

    _declare_builtins()
    toolshed.init(sess.logger, debug=False, check_available=False, session=sess)
    sess.toolshed = toolshed.get_toolshed()
    sess.toolshed.bootstrap_bundles(sess, False)
    from chimerax.core import tools, undo
    sess.tools = tools.Tools(sess, first=True)
    sess.undo = undo.Undo(sess, first=True)
    _session = sess
    return sess


def main(argv=None):
    import argparse
    p = argparse.ArgumentParser(description='Run ChimeraX commands headless in this venv.')
    p.add_argument('--cmd', action='append', default=[], help='commands to run (may repeat)')
    p.add_argument('scripts', nargs='*', help='.cxc or .py files to open, in order')
    args = p.parse_args(argv)
    import tempfile
    with tempfile.TemporaryDirectory(prefix='chimerax-') as state:
        session = start_session(state)
        from chimerax.core.commands import FileNameArg, run
        from chimerax.core.errors import UserError
        commands = args.cmd + ['open ' + FileNameArg.unparse(os.path.abspath(s)) for s in args.scripts]
        try:
            for command in commands:
                run(session, command)
        except UserError as e:
            session.logger.error(str(e))
            return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
