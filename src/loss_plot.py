"""The live loss curve of the tool panel: matplotlib on a Qt canvas (ChimeraX ships matplotlib).

The loss of each stage kind on its own axis: W2 (or L2) on the left, refinement's
1 − correlation on the right, since their scales differ; a stage change is a dashed line.
"""

from Qt.QtWidgets import QSizePolicy, QVBoxLayout, QWidget

STAGE_NAMES = {'w2': 'W2 loss', 'l2': 'L2 loss', 'refine': '1 − correlation'}


class LossPlot(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure
        self.figure = Figure(figsize=(3.6, 1.9), dpi=100, layout='constrained')
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.canvas.setFixedHeight(190)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)
        self.reset()

    def reset(self, total=None):
        """Empty axes for a run of `total` steps."""
        self.figure.clear()
        self.axes = self.figure.add_subplot()
        self.axes.set_xlabel('step', fontsize=8)
        self.axes.tick_params(labelsize=7)
        self.right = None
        self.series = {}          # stage kind -> ([steps], [losses])
        self.marks = []           # (step, label)
        self.total = total
        if total:
            self.axes.set_xlim(0, total)
        else:
            self.axes.set_yticks([])
            self.axes.set_xticks([])
            self.axes.text(0.5, 0.5, 'the loss of each step appears here\nwhile a run trains', ha='center',
                           va='center', fontsize=8, color='0.45', transform=self.axes.transAxes)
        self.canvas.draw_idle()

    def add(self, first_step, losses, kind):
        """Losses of steps first_step, first_step + 1, … under one stage kind."""
        steps, values = self.series.setdefault(kind, ([], []))
        steps.extend(range(first_step, first_step + len(losses)))
        values.extend(losses)
        self._draw()

    def mark(self, step, label):
        self.marks.append((step, label))
        self._draw()

    def points(self, kind):
        return self.series.get(kind, ([], []))

    def _draw(self):
        ax = self.axes
        ax.cla()
        ax.set_xlabel('step', fontsize=8)
        ax.tick_params(labelsize=7)
        if self.right is not None:
            self.right.remove()
            self.right = None
        for kind, (steps, values) in self.series.items():
            target = ax
            if kind == 'refine' and len(self.series) > 1:
                self.right = target = ax.twinx()
                target.tick_params(labelsize=7)
            color = 'tab:orange' if kind == 'refine' else 'tab:blue'
            target.plot(steps, values, color=color, linewidth=1)
            target.set_ylabel(STAGE_NAMES.get(kind, kind), fontsize=8, color=color)
        for step, label in self.marks:
            ax.axvline(step, color='0.5', linestyle='--', linewidth=0.8)
            ax.annotate(label, (step, 1), xycoords=('data', 'axes fraction'), fontsize=7, color='0.35',
                        xytext=(2, -9), textcoords='offset points')
        if self.total:
            ax.set_xlim(0, self.total)
        self.canvas.draw_idle()
