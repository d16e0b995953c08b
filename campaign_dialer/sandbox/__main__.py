"""`python -m campaign_dialer.sandbox`: the same as the CLI's `sandbox` command."""

import sys

from campaign_dialer.sandbox.cli import main

sys.exit(main())
