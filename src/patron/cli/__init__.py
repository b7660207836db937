"""Command-line shell: one function per command, calling the Workspace."""
