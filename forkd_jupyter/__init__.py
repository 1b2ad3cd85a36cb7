"""forkd-jupyter: forkable KVM sandboxes for notebooks."""

__version__ = "0.1.0"
