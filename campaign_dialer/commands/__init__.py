"""What each CLI command does, as plain functions returning an exit code.

One module per command family: `run_demo` (run, demo), `check_plan` (check), `state` (status),
`controls` (pause, resume, cancel, release), `outputs` (results, report), `watch`
(status --watch), `init_file` (init), `callerids` (caller-id); `lock` is the
campaign's run lock. The names below are what the CLI and the tests use.
"""

from __future__ import annotations

from campaign_dialer import log
from campaign_dialer.commands.callerids import caller_id_command, caller_id_data
from campaign_dialer.commands.check_plan import (
    PLAN_CSV_COLUMNS,
    UNREADABLE_SHOWN,
    check,
    check_inputs_data,
    compliance_lines,
    compliance_summary,
    forecast_lines,
    plan_forecast,
    plan_frame,
)
from campaign_dialer.commands.controls import control, release
from campaign_dialer.commands.init_file import init
from campaign_dialer.commands.lock import campaign_lock, lock_held
from campaign_dialer.commands.outputs import report, results
from campaign_dialer.commands.run_demo import (
    DEMO_CLOCK,
    DEMO_INPUTS,
    DEMO_MARKER,
    DEMO_OUT,
    build_report_after_run,
    deadline_from,
    demo,
    demo_source,
    prepare_demo,
    progress_line,
    refuse_stale_lists,
    require_real_clock_off_loopback,
    run,
)
from campaign_dialer.commands.state import status, status_data
from campaign_dialer.commands.watch import watch
from campaign_dialer.errors import CampaignLocked, DemoFolderError

__all__ = [
    "DEMO_CLOCK", "DEMO_INPUTS", "DEMO_MARKER", "DEMO_OUT", "PLAN_CSV_COLUMNS",
    "UNREADABLE_SHOWN", "CampaignLocked", "DemoFolderError", "build_report_after_run",
    "caller_id_command", "caller_id_data",
    "campaign_lock", "check", "check_inputs_data", "compliance_lines", "compliance_summary",
    "control", "deadline_from", "demo", "init", "demo_source", "forecast_lines", "lock_held", "log",
    "plan_forecast", "plan_frame", "prepare_demo", "progress_line", "refuse_stale_lists",
    "release", "report", "require_real_clock_off_loopback", "results", "run", "status",
    "status_data", "watch",
]  # fmt: skip
