"""An FSC curve as a PNG: matplotlib (ChimeraX ships it) drawn off screen, without pyplot, so
that it never touches ChimeraX's own Qt window."""

from chimerax.core.errors import UserError

CUTOFFS = ((0.5, '-'), (0.143, '--'))
RESOLUTIONS = (50, 20, 10, 7, 5, 4, 3, 2.5, 2, 1.5, 1.2, 1, 0.8)     # Å, marked on the top axis


def save_plot(fsc, path, title):
    """The curve against spatial frequency (resolution in Å on the top axis), the 0.5 and 0.143
    lines and where it crosses them."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    figure = Figure(figsize=(6.4, 4.2), dpi=100, layout='constrained')
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    ax.plot(fsc.frequency, fsc.curve, color='C0', lw=1.6, label='FSC')
    for cutoff, style in CUTOFFS:
        ax.axhline(cutoff, color='0.5', lw=0.8, ls=style)
        f = 1 / fsc.resolution(cutoff)
        ax.plot([f], [cutoff], 'o', color='C3', ms=5)
        ax.annotate(f'{cutoff:g}: {fsc.text(cutoff)}', (f, cutoff), textcoords='offset points', xytext=(6, 5),
                    fontsize=8, ha='left' if f < 0.7 * fsc.frequency[-1] else 'right')
    ax.set(xlim=(0, fsc.frequency[-1]), ylim=(min(-0.05, float(fsc.curve.min()) - 0.05), 1.05),
           xlabel='spatial frequency (1/Å)', ylabel='FSC', title=title)
    top = ax.twiny()
    top.set_xlim(ax.get_xlim())
    shown = [r for r in RESOLUTIONS if 0.06 * fsc.frequency[-1] <= 1 / r <= fsc.frequency[-1] * 1.0001]
    top.set_xticks([1 / r for r in shown], [f'{r:g}' for r in shown])
    top.set_xlabel('resolution (Å)')
    ax.text(0.99, 0.98, f'correlation {fsc.correlation:.3f}', transform=ax.transAxes, ha='right', va='top',
            fontsize=8)
    try:
        figure.savefig(path)
    except OSError as e:
        raise UserError(f'the plot cannot be saved to {path} ({e.strerror or e}): choose another file') from e

