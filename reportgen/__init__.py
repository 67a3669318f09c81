"""reportgen: turn a customer table into a customer-segmentation report.

The library's one entry point is :func:`run`; the ``reportgen`` command is a thin layer over it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import Config
    from .pipeline import RunResult

__version__ = "0.1.0"
__all__ = ["__version__", "run"]


def run(source: str | Path | None = None, config: Config | str | Path | None = None,
        out: str | Path = "output", *, previous: str | None = None,
        fresh: bool = False) -> RunResult:
    """Segment SOURCE and write the report into ``out/<run id>/``, as ``reportgen run`` does.

    ``source``: a file path or database URL (None = ``[input] source``, else the bundled
    sample). The run is one period of its series (``[series]`` in the config): it is compared
    with the series' previous run, or with the run ``previous`` names (``--previous``);
    ``fresh`` starts the series afresh (``--no-previous``). ``config``: a
    :class:`reportgen.config.Config`, the path of a reportgen.toml, or None for the defaults
    (``Config().with_overrides(segment__k=5)`` sets single values). Returns a
    :class:`reportgen.pipeline.RunResult`: the run folder, the Report, the files written and
    the time of each stage; ``result.failed_gates`` lists the CI gates that failed (the CLI
    exits 3 then). Bad input or configuration raises a
    :class:`reportgen.errors.ReportgenError` whose message is the CLI's one line.

    Calling it several times in one process gives the same outputs as as many CLI runs.
    """
    from .config import Config, load_config
    from .pipeline import run as run_pipeline

    cfg = config if isinstance(config, Config) else load_config(config)
    return run_pipeline(None if source is None else str(source), cfg, Path(out),
                        previous=previous, fresh=fresh)
