"""Options several commands share: progress bars and the rule for spike alerts."""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Annotated, Optional

import typer

from assistant.analytics.spikes import SpikeRule

DEFAULT_RULE = SpikeRule()
WindowOption = Annotated[float, typer.Option("--window-hours", help="Alerts: length of the rolling window.")]
BaselineOption = Annotated[float, typer.Option("--baseline-days", help="Alerts: the period before the window it is compared with.")]
ThresholdOption = Annotated[float, typer.Option("--threshold", min=0.0, max=1.0,
                                                help="Alerts: rise in the share of negative messages over the baseline (0.25 = 25 points).")]
MinMessagesOption = Annotated[int, typer.Option("--min-messages", min=1, help="Alerts: fewest customer messages in a window to judge it.")]
ProgressOption = Annotated[Optional[bool], typer.Option("--progress/--no-progress", help="Progress bars (default: only on a terminal).")]


def spike_rule(window_hours: float, baseline_days: float, threshold: float, min_messages: int) -> SpikeRule:
    return SpikeRule(window=timedelta(hours=window_hours), baseline=timedelta(days=baseline_days),
                     threshold=threshold, min_messages=min_messages)


def progress_bars(value: bool | None) -> bool:
    """``--progress/--no-progress`` as given, else bars only when stderr is a terminal."""
    return sys.stderr.isatty() if value is None else value
