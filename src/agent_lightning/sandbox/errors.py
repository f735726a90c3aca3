"""The one error the sandbox raises: a refusal or failure to report to the policy as a tool error."""

from __future__ import annotations


class SandboxError(Exception):
    """A tool call the sandbox refused or could not complete; the message is written for the policy to read."""
