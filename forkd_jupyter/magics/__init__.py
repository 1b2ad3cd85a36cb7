"""IPython magics (`%forkd`, `%%forkd`): the notebook user's way in.

They speak only to the client SDK (forkd_jupyter.client)."""
