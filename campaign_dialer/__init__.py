"""campaign-dialer: outbound AI voice-call campaigns that put the called person first."""

__version__ = "0.1.0"
