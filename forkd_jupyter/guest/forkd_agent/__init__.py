"""The guest agent: runs cells for the host over the fd-3 control channel.

Standard library only at import time; IPython is used when importable.
The guest process cannot fork, and the user's threads are the user's: nothing
here starts a thread or a process."""
