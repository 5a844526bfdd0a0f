"""Rich progress bars for training and quantization."""

from __future__ import annotations


class TrainingProgress:
    """One bar per run: batches over all epochs, with the epoch and running loss/accuracy."""

    def __init__(self, console):
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                  MofNCompleteColumn(), TextColumn("{task.fields[stats]}"),
                                  TimeElapsedColumn(), TimeRemainingColumn(), console=console)
        self._task = None

    def __enter__(self):
        self._progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self._progress.__exit__(*exc)

    def update(self, epoch, epochs, batch, batches, logs):
        if self._task is None:
            self._task = self._progress.add_task("training", total=epochs * batches, stats="")
        stats = f"loss {logs.get('loss', 0):.4f} acc {logs.get('accuracy', 0):.4f}"
        self._progress.update(self._task, completed=epoch * batches + batch,
                              description=f"epoch {epoch + 1}/{epochs}", stats=stats)


class StageProgress:
    """A bar per named stage (converting, int8 under TFLM, ...)."""

    def __init__(self, console):
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn)

        self._progress = Progress(TextColumn("{task.description:<18}"), BarColumn(),
                                  MofNCompleteColumn(), TimeElapsedColumn(), console=console)
        self._tasks = {}

    def __enter__(self):
        self._progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self._progress.__exit__(*exc)

    def update(self, stage, done, total):
        if stage not in self._tasks:
            self._tasks[stage] = self._progress.add_task(stage, total=total)
        # Redrawing per image would cost more than the image: update every 100.
        if done == total or done % 100 == 0:
            self._progress.update(self._tasks[stage], completed=done)
