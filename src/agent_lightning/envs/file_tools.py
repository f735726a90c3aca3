"""Environments that act on a sandboxed workspace: the lifecycle, and the six file tools as one reusable class.

    class MyEnv(FileToolsEnvironment):      # gets read_file, write_file, list_dir, make_dir, move, delete
        @classmethod
        def tasks(cls, split, size, seed): ...   # rows carry `files` (JSON {path: text}) for the template
        def _finish(self, final_text): ...       # inspect self.workspace.snapshot()

`reset(**task)` rebuilds the rollout's workspace from the task's `files` column (a JSON object, so rows of
different tasks share one dataset schema), reusing the instance's folder: TRL pools instances and resets them
for every rollout, so a workspace lives as long as its instance and is removed when the instance goes away
(or at interpreter exit). Every tool error is a `SandboxError` message the policy can read and act on.

Not covered here: what a task is or how it is verified (the environments in environments/ say).
"""

from __future__ import annotations

import json
import sys
from typing import Any, ClassVar

from agent_lightning.envs import Environment
from agent_lightning.sandbox import Quota, Workspace, sandbox_owner


class WorkspaceEnvironment(Environment):
    """An environment whose episodes run in a fresh `Workspace` built from the task's `files`."""

    quota: ClassVar[Quota] = Quota()

    def __init__(self) -> None:
        super().__init__()
        self.workspace: Workspace | None = None

    def reset(self, **task: Any) -> str | None:
        super().reset(**task)
        self.ws.reset(json.loads(task.get("files") or "{}"))
        return None

    def __del__(self, _finalizing: Any = sys.is_finalizing) -> None:
        # At interpreter shutdown the sandbox's atexit hook has removed every workspace already, and the modules
        # close() needs (this one too: hence the bound default) may be torn down, their globals None.
        if getattr(self, "workspace", None) is not None and not _finalizing():
            self.workspace.close()

    @property
    def ws(self) -> Workspace:
        """The episode's workspace (an empty one if a tool is called before any reset; episode state is kept)."""
        if self.workspace is None:
            self.workspace = Workspace({}, quota=self.quota, owner=sandbox_owner())
        return self.workspace


class FileToolsEnvironment(WorkspaceEnvironment):
    """The file tools; subclasses add tasks, a verifier and possibly more tools."""

    def read_file(self, path: str) -> str:
        """Read a text file from the workspace.

        Args:
            path: File path relative to the workspace, e.g. "notes/todo.txt".
        """
        return self.ws.read_file(path)

    def write_file(self, path: str, content: str) -> str:
        """Create or overwrite a text file (missing folders are created).

        Args:
            path: File path relative to the workspace.
            content: The complete new text of the file.
        """
        size = self.ws.write_file(path, content)
        return f"wrote {size} bytes to {path}"

    def list_dir(self, path: str = ".") -> str:
        """List a folder; folder names end with '/'.

        Args:
            path: Folder path relative to the workspace; "." is the workspace itself.
        """
        names = self.ws.list_dir(path)
        return "\n".join(names) if names else "(empty folder)"

    def make_dir(self, path: str) -> str:
        """Create a folder (and missing parents).

        Args:
            path: Folder path relative to the workspace.
        """
        self.ws.make_dir(path)
        return f"created folder {path}"

    def move(self, src: str, dst: str) -> str:
        """Move or rename a file or folder; if dst is an existing folder, src moves into it.

        Args:
            src: Existing path relative to the workspace.
            dst: New path, or an existing folder.
        """
        self.ws.move(src, dst)
        return f"moved {src} to {dst}"

    def delete(self, path: str) -> str:
        """Delete a file, or a folder with everything in it.

        Args:
            path: Path relative to the workspace.
        """
        self.ws.delete(path)
        return f"deleted {path}"
